// @vitest-environment happy-dom
import { cleanup, render } from '@testing-library/react';
import { createElement, Fragment } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { linkify, safeHref } from '../../web/src/chat/linkify.tsx';
import { apiImageSrc } from '../../web/src/chat/upload.ts';

afterEach(cleanup);

const renderBody = (body: string) => render(createElement(Fragment, null, ...linkify(body))).container;

describe('message bodies', () => {
  it('render as text, with only http(s) links opened without an opener', () => {
    const el = renderBody('<img src=x onerror=alert(1)> see https://example.com/a?b=1, javascript:alert(1) and http://x.test.');
    expect(el.querySelector('img')).toBeNull();
    const links = [...el.querySelectorAll('a')];
    expect(links.map((a) => a.getAttribute('href'))).toEqual(['https://example.com/a?b=1', 'http://x.test/']);
    expect(links.map((a) => a.textContent)).toEqual(['https://example.com/a?b=1', 'http://x.test']);
    for (const a of links) expect(a.getAttribute('rel')).toBe('noopener noreferrer');
    expect(el.textContent).toBe('<img src=x onerror=alert(1)> see https://example.com/a?b=1, javascript:alert(1) and http://x.test.');
  });

  it('refuses non-http schemes', () => {
    expect(safeHref('javascript:alert(1)')).toBeNull();
    expect(safeHref('data:text/html,x')).toBeNull();
    expect(safeHref('https://ok.test/')).toBe('https://ok.test/');
  });

  it('shows images only from the API origin under /uploads/', () => {
    const origin = 'https://chat.test';
    expect(apiImageSrc('/uploads/abc?expires=1&sig=x', origin)).toBe('https://chat.test/uploads/abc?expires=1&sig=x');
    expect(apiImageSrc('https://evil.test/uploads/abc', origin)).toBeNull();
    expect(apiImageSrc('/graphql', origin)).toBeNull();
    expect(apiImageSrc('//evil.test/uploads/x', origin)).toBeNull();
  });
});
