import { describe, expect, it } from 'vitest';
import { breakingChanges, deprecationsWithoutReason, isAnnounced, unreleasedSection } from '../scripts/schema-compat.ts';

const OLD = `type Query { rooms: [Room!]! me: User }
type Room { id: ID! name: String! topic: String }
type User { id: ID! }`;

const CHANGELOG = (breaking: string) => `# Changelog

## Unreleased

### Breaking

${breaking}

## 0.1.0

- \`Room.name\` removed long ago (an older release: does not count).
`;

describe('schema breaking-change check', () => {
  it('finds a removed field and accepts it only when Unreleased names it', async () => {
    const removed = OLD.replace(' topic: String', '');
    const [change] = await breakingChanges(OLD, removed, CHANGELOG('(none)'));
    expect(change).toMatchObject({ path: 'Room.topic', announced: false });
    expect((await breakingChanges(OLD, removed, CHANGELOG('- `Room.topic` removed: use `Room.name`.')))[0]?.announced).toBe(true);
    // Naming the type covers its fields.
    expect((await breakingChanges(OLD, removed, CHANGELOG('- `Room` lost its topic.')))[0]?.announced).toBe(true);
  });

  it('ignores entries outside the Unreleased section', async () => {
    const renamed = OLD.replace('name: String!', 'title: String!');
    const changes = await breakingChanges(OLD, renamed, CHANGELOG('(none)'));
    expect(changes.map((c) => [c.path, c.announced])).toEqual([['Room.name', false]]);
  });

  it('does not count additions or new optional arguments as breaking', async () => {
    const added = OLD.replace('rooms: [Room!]!', 'rooms(first: Int): [Room!]! room(id: ID!): Room');
    expect(await breakingChanges(OLD, added, '')).toEqual([]);
  });

  it('reads the Unreleased section up to the next release heading', () => {
    expect(unreleasedSection(CHANGELOG('- `A.b` gone'))).toMatch(/`A\.b` gone/);
    expect(unreleasedSection(CHANGELOG('x'))).not.toMatch(/Room\.name/);
    expect(unreleasedSection('# Changelog\n\n## Unreleased\n- `Q.x`\n')).toMatch(/Q\.x/);
    expect(isAnnounced('Room.topic', 'nothing here')).toBe(false);
  });

  it('flags a deprecation without a reason of its own', () => {
    expect(deprecationsWithoutReason('type Query { a: Int @deprecated b: Int @deprecated(reason: "Use c.") c: Int }')).toEqual(['Query.a']);
    expect(deprecationsWithoutReason('type Query { a(x: Int @deprecated): Int } enum E { A @deprecated B }')).toEqual(['Query.a(x)', 'E.A']);
  });
});
