import type { ChatMessageFragment } from '../gql/graphql.ts';
import { linkify } from './linkify.tsx';
import { apiImageSrc } from './upload.ts';

/**
 * One message. The body is rendered as text (React escapes it), with http(s)
 * links only; images are shown only from the API's own /uploads/ urls.
 * `readBy` is how many other members have read it (for the viewer's messages).
 */
export function MessageItem({ message, mine, readBy, members }: { message: ChatMessageFragment; mine: boolean; readBy?: number; members: number }) {
  const time = new Date(message.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return (
    <li className={`message ${mine ? 'mine' : ''}`} data-seq={message.seq} data-client-id={message.clientId}>
      <div className="meta">
        <span className="sender">{message.sender.name}</span> <time dateTime={message.createdAt}>{time}</time>
      </div>
      {message.body && <div className="body">{linkify(message.body)}</div>}
      {message.attachments.map((a) => {
        const src = a.contentType.startsWith('image/') ? apiImageSrc(a.signedUrl) : null;
        const href = apiImageSrc(a.signedUrl);
        return (
          <div key={a.id} className="attachment">
            {src ? (
              <img src={src} alt={a.name} className="preview" loading="lazy" />
            ) : (
              href && (
                <a href={href} rel="noopener noreferrer" download={a.name}>
                  {a.name}
                </a>
              )
            )}
            <span className="muted small">{formatSize(a.size)}</span>
          </div>
        );
      })}
      {mine && (
        <div className="receipt" data-read-by={readBy ?? 0}>
          {readBy && readBy > 0 ? (
            <span className="read" title={`Read by ${readBy}`}>
              ✓✓ {members > 2 ? `Read by ${readBy}` : 'Read'}
            </span>
          ) : (
            <span className="sent" title="Sent">
              ✓
            </span>
          )}
        </div>
      )}
    </li>
  );
}

export function PendingItem({ body, sender }: { body: string; sender: string }) {
  return (
    <li className="message mine pending" data-pending="true">
      <div className="meta">
        <span className="sender">{sender}</span> <span className="muted">sending…</span>
      </div>
      <div className="body">{linkify(body)}</div>
      <div className="receipt">
        <span title="Waiting to be sent">🕓 Pending</span>
      </div>
    </li>
  );
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
