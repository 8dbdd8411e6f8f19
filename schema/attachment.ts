import { builder, type MessageShape } from './builder.ts';

/**
 * A file attached to a message. The bytes are served over plain HTTP by the
 * runtime (`GET /uploads/<id>`); this type only describes them and links to them.
 */
export const Attachment = builder.objectRef<MessageShape['attachments'][number]>('Attachment').implement({
  description: 'A file attached to a message.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The upload id returned by `POST /uploads`.' }),
    name: t.exposeString('name', { description: 'Sanitized file name.' }),
    size: t.exposeInt('size', { description: 'Size in bytes.' }),
    contentType: t.exposeString('contentType', {
      description: 'Media type detected from the file content (never the type the uploader declared).',
    }),
    url: t.string({
      description:
        'Download path (`/uploads/<id>`), relative to the API origin. Requires `Authorization: Bearer <token>` of the uploader or of a member of the room the message was posted in.',
      resolve: (a) => `/uploads/${a.id}`,
    }),
    signedUrl: t.string({
      description:
        'Download path with an expiring signature (`/uploads/<id>?expires=<unix seconds>&sig=...`), relative to the API origin. Works without a token, e.g. in `<img src>`, for about an hour; query again for a fresh one.',
      resolve: (a, _args, ctx) => ctx.files.signedUrl(a.id),
    }),
  }),
});
