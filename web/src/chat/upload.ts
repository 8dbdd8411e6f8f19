/** What `POST /uploads` answers. */
export interface UploadedFile {
  id: string;
  url: string;
  name: string;
  size: number;
  contentType: string;
}

/**
 * Uploads a file with XMLHttpRequest, whose `upload.onprogress` reports bytes
 * sent (fetch has no upload progress). `onProgress` gets 0..1.
 */
export function uploadFile(file: File, token: string, onProgress: (fraction: number) => void): { done: Promise<UploadedFile>; abort(): void } {
  const xhr = new XMLHttpRequest();
  const done = new Promise<UploadedFile>((resolve, reject) => {
    xhr.open('POST', '/uploads');
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status === 201 || xhr.status === 200) {
        onProgress(1);
        resolve(xhr.response as UploadedFile);
      } else {
        const message = (xhr.response as { error?: string } | null)?.error;
        reject(new Error(message ? `Upload failed: ${message}` : `Upload failed (${xhr.status})`));
      }
    };
    xhr.onerror = () => reject(new Error('Upload failed: network error'));
    xhr.onabort = () => reject(new Error('Upload cancelled'));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

/**
 * An attachment URL usable in `<img src>`: only a path on the API's own origin
 * under /uploads/ (what the API hands out); anything else is refused.
 */
export function apiImageSrc(path: string, origin: string = window.location.origin): string | null {
  try {
    const url = new URL(path, origin);
    return url.origin === origin && url.pathname.startsWith('/uploads/') ? url.href : null;
  } catch {
    return null;
  }
}
