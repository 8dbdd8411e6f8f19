import type { CodegenConfig } from '@graphql-codegen/cli';

/**
 * Typed client documents from the printed contract. The web client may depend
 * on `schema/schema.graphql` only, never on the server's code, so this reads
 * the committed SDL file rather than building the schema from `schema/*.ts`.
 *
 * Output (`web/src/gql/`) is generated, not committed: `npm install` (postinstall)
 * and `npm run typecheck` regenerate it, so it cannot drift from the schema.
 */
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  // One operation (or fragment) per file: the preset's graphql() lookup maps a
  // file with several operations to the first one only.
  documents: ['web/src/graphql/*.graphql'],
  ignoreNoDocuments: false,
  silent: true,
  generates: {
    'web/src/gql/': {
      preset: 'client',
      // Callers import the named `XxxDocument` constants; masking would hide
      // fragment fields behind useFragment(), which a non-React client does not need.
      presetConfig: { fragmentMasking: false },
      config: {
        // The project runs TypeScript sources directly (NodeNext + allowImportingTsExtensions).
        importExtension: '.ts',
        useTypeImports: true,
        enumsAsTypes: true,
        strictScalars: true,
        scalars: { DateTime: 'string', ID: 'string' },
        avoidOptionals: false,
      },
    },
  },
};

export default config;
