import nodemailer from 'nodemailer';

/** One plain-text email. */
export interface Email {
  to: string;
  subject: string;
  text: string;
}

/** Sends email; implemented over SMTP, replaceable in tests. */
export interface Mailer {
  send(email: Email): Promise<void>;
  close(): void;
}

/**
 * A mailer over SMTP (`smtp://user:pass@host:587`, or `smtps://` for implicit
 * TLS). Connections are pooled, since a digest run sends several mails.
 */
export function createSmtpMailer(smtpUrl: string, from: string): Mailer {
  const url = new URL(smtpUrl);
  const transport = nodemailer.createTransport({
    pool: true,
    maxConnections: 2,
    host: url.hostname,
    port: url.port ? Number(url.port) : url.protocol === 'smtps:' ? 465 : 587,
    secure: url.protocol === 'smtps:',
    ...(url.username ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } } : {}),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    async send(email) {
      await transport.sendMail({ from, to: email.to, subject: email.subject, text: email.text });
    },
    close() {
      transport.close();
    },
  };
}
