import { getOperationAST, Kind, type DocumentNode, type SelectionSetNode } from 'graphql';

/** The root field of a subscription and the key its value has in each result (the alias, if any). */
export interface RootField {
  field: string;
  responseKey: string;
}

/**
 * The root field of the subscription operation selected by `operationName`,
 * or undefined when the operation is a query or mutation (or absent).
 * A valid subscription has exactly one root field, possibly behind fragments.
 */
export function subscriptionRootField(document: DocumentNode, operationName: string | null | undefined): RootField | undefined {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (operation?.operation !== 'subscription') return undefined;
  const fragments = new Map<string, SelectionSetNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition.selectionSet);
  }
  const find = (set: SelectionSetNode, seen: Set<string>): RootField | undefined => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value === '__typename') continue;
        return { field: selection.name.value, responseKey: selection.alias?.value ?? selection.name.value };
      }
      const nested =
        selection.kind === Kind.INLINE_FRAGMENT
          ? selection.selectionSet
          : seen.has(selection.name.value)
            ? undefined
            : fragments.get(selection.name.value);
      if (selection.kind === Kind.FRAGMENT_SPREAD) seen.add(selection.name.value);
      const found = nested && find(nested, seen);
      if (found) return found;
    }
    return undefined;
  };
  return find(operation.selectionSet, new Set());
}
