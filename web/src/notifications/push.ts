import type { Client } from '@urql/core';
import { RegisterPushSubscriptionDocument, WebPushPublicKeyDocument } from '../gql/graphql.ts';

export type PushSetup = 'unsupported' | 'off-on-server' | 'denied' | 'subscribed';

/**
 * Turns on Web Push for this browser. Call it from a click handler only:
 * browsers (rightly) ignore or penalise permission prompts nobody asked for.
 */
export async function enablePush(urql: Client): Promise<PushSetup> {
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return 'unsupported';
  const key = (await urql.query(WebPushPublicKeyDocument, {}, { requestPolicy: 'network-only' }).toPromise()).data?.webPushPublicKey;
  if (!key) return 'off-on-server';
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') return 'denied';
  const registration = await navigator.serviceWorker.ready;
  const subscription =
    (await registration.pushManager.getSubscription()) ??
    (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(key) }));
  const json = subscription.toJSON();
  const result = await urql
    .mutation(RegisterPushSubscriptionDocument, { input: { endpoint: json.endpoint!, keys: { p256dh: json.keys!.p256dh!, auth: json.keys!.auth! } } })
    .toPromise();
  if (result.error) throw result.error;
  return 'subscribed';
}

function base64UrlToBytes(value: string): Uint8Array<ArrayBuffer> {
  const base64 = value.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(value.length / 4) * 4, '=');
  const binary = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
