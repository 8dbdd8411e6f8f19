import type { NotificationKind } from '../events.ts';

/**
 * The one-line title of a notification, the same in the app, in a push
 * message and in an email digest.
 */
export function describeNotification(n: { kind: string; actorName: string; roomName: string }): { title: string } {
  switch (n.kind as NotificationKind) {
    case 'MENTION':
      return { title: `${n.actorName} mentioned you in ${n.roomName}` };
    case 'DIRECT_MESSAGE':
      return { title: `${n.actorName} sent you a message` };
    case 'ADDED_TO_ROOM':
      return { title: `${n.actorName} added you to ${n.roomName}` };
    default:
      return { title: `News in ${n.roomName}` };
  }
}
