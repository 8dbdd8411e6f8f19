import { useDisableIntrospection } from '@envelop/disable-introspection';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError, type ExecutionResult, type ValidationContext } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { ErrorCode } from '../../schema/errors.ts';
import { assignErrorId } from './request-context.ts';

/**
 * What one GraphQL document may contain. The product's own documents
 * (web/src/graphql, loadtests/lib/operations.ts) stay within half of each,
 * which a test checks; an attacker's nested or repeated selections do not.
 */
export interface QueryLimits {
  /** Nesting of selections (a fragment's fields count at the level where it is spread). */
  maxDepth: number;
  /** graphql-armor's cost: 2 per object field, 1 per scalar, times 1.5 per level of depth. */
  maxCost: number;
  /** Aliased fields (`a: me { id }`) in the document. */
  maxAliases: number;
  /** Lexical tokens in the document text, counted while parsing: a huge document stops early. */
  maxTokens: number;
  /** Directives (`@include`, `@skip`, …) in the document. */
  maxDirectives: number;
}

/** The limits in force. */
export const QUERY_LIMITS: QueryLimits = { maxDepth: 16, maxCost: 20_000, maxAliases: 15, maxTokens: 2000, maxDirectives: 20 };

// Like any invalid document (GraphQL over HTTP): 400 for application/graphql-response+json, 200 for application/json.
const INVALID_DOCUMENT_HTTP = { status: 400, spec: true };

/** An over-limit document: a client error with a stable code (armor's own errors carry none). */
function tooComplex(message: string): GraphQLError {
  return new GraphQLError(message.replace(/^Syntax Error: /, ''), {
    extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, http: INVALID_DOCUMENT_HTTP },
  });
}

// Armor's validation rules throw by default, which would escape validate()
// and, over graphql-ws, fail the whole socket; reported to the validation
// context they come back as ordinary validation errors on both paths.
const report = { propagateOnRejection: false, onReject: [(ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(tooComplex(error.message))] };

/**
 * Plugins that refuse over-limit documents (graphql-armor) and, when
 * `introspection` is false, introspection. They hook envelop's parse and
 * validate, which HTTP and graphql-ws share, so subscriptions are held to
 * the same limits.
 */
export function queryGuardPlugins(options: { introspection: boolean; limits?: QueryLimits }): Plugin[] {
  const limits = options.limits ?? QUERY_LIMITS;
  const plugins: Plugin[] = [
    EnvelopArmorPlugin({
      maxDepth: { n: limits.maxDepth, flattenFragments: true, ...report },
      costLimit: { maxCost: limits.maxCost, flattenFragments: true, ...report },
      maxAliases: { n: limits.maxAliases, ...report },
      maxDirectives: { n: limits.maxDirectives, ...report },
      // Counted inside the parser, where there is no validation context to
      // report to: the error is thrown, so give it the code before it goes.
      maxTokens: {
        n: limits.maxTokens,
        onReject: [
          (_ctx, error) => {
            error.message = error.message.replace(/^Syntax Error: /, '');
            Object.assign(error.extensions as Record<string, unknown>, { code: ErrorCode.QUERY_TOO_COMPLEX, http: INVALID_DOCUMENT_HTTP });
          },
        ],
      },
      // Suggestions ("Did you mean …") reveal field names; they matter only
      // where the schema is hidden, and help everywhere else.
      blockFieldSuggestion: { enabled: !options.introspection },
    }) as Plugin,
  ];
  if (!options.introspection) plugins.push(useDisableIntrospection() as Plugin);
  return plugins;
}

/**
 * Answers an HTTP request whose every root field was refused by a rate
 * limit with 429 and Retry-After (the largest `retryAfter`). A request where
 * anything else happened keeps its status: the client must read the errors.
 */
export function useRateLimitStatus(): Plugin {
  return {
    onExecutionResult({ result, setResult }) {
      if (!result || isAsyncIterable(result)) return;
      const status = rateLimitStatus(result);
      if (status) setResult({ ...result, extensions: { ...result.extensions, http: status } });
    },
  };
}

function rateLimitStatus(result: ExecutionResult): { status: number; headers: Record<string, string> } | null {
  const errors = result.errors ?? [];
  if (errors.length === 0 || !errors.every((e) => e.extensions?.code === ErrorCode.RATE_LIMITED)) return null;
  if (result.data && Object.values(result.data).some((v) => v !== null)) return null;
  const retryAfter = Math.max(1, ...errors.map((e) => Number(e.extensions.retryAfter) || 1));
  return { status: 429, headers: { 'Retry-After': String(retryAfter) } };
}

type MaskError = (error: unknown, message: string, isDev?: boolean) => Error;

/**
 * Wraps yoga's error masking: a masked (unexpected) error tells the client
 * `extensions.requestId`, and the log line yoga writes with the original
 * error names the same id (see errorId()).
 */
export function withErrorId(mask: MaskError): MaskError {
  return (error, message, isDev) => {
    const masked = mask(error, message, isDev);
    if (masked === error || !(masked instanceof GraphQLError)) return masked;
    // A fresh error yoga made for this client: adding to it touches nothing shared.
    (masked.extensions as Record<string, unknown>).requestId = assignErrorId(error);
    return masked;
  };
}
