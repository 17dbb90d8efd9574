/**
 * Label syntax (Kubernetes'), and label selectors as `kubectl get -l` takes them. Free of the
 * schema library, so the CLI can check a selector before it sends anything, at no start-up cost.
 */

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `[prefix/]name`: an optional DNS subdomain and "/", then at most 63 letters, digits, "-", "_" or ".". */
export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = key.slice(slash + 1);
  return (prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix))) && name.length <= 63 && LABEL_NAME.test(name);
}

/** Empty, or at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit. */
export function isLabelValue(value: string): boolean {
  return value.length <= 63 && (value === '' || LABEL_NAME.test(value));
}

/** One requirement of a selector: the key has the value, has another or none, is there, is not. */
export type LabelRequirement =
  | { key: string; op: '=' | '!='; value: string }
  | { key: string; op: 'exists' | '!exists' };

export type LabelSelector = LabelRequirement[];

/**
 * `app=web,tier!=db,canary,!legacy` (kubectl's equality-based selector; `==` is `=`): every
 * requirement must hold. Throws an Error that quotes the part at fault.
 */
export function parseLabelSelector(text: string): LabelSelector {
  const parts = text.split(',').map((p) => p.trim());
  if (!text.trim() || parts.some((p) => !p)) throw new Error(`label selector "${text}" has an empty requirement: join key=value, key!=value, key or !key with single commas`);
  return parts.map((part) => {
    const m = /^(!)?([^=!]+)$/.exec(part) ?? /^([^=!]+?)\s*(==|=|!=)\s*([^=!]*)$/.exec(part);
    const req: LabelRequirement | undefined = !m ? undefined
      : m.length === 3 ? { key: m[2].trim(), op: m[1] ? '!exists' : 'exists' }
        : { key: m[1].trim(), op: m[2] === '!=' ? '!=' : '=', value: m[3].trim() };
    if (!req || !isLabelKey(req.key) || ('value' in req && !isLabelValue(req.value))) {
      throw new Error(`label selector "${text}": "${part}" is not a requirement: use key=value, key!=value, key or !key, with keys and values as labels have them (e.g. app=web,tier!=db)`);
    }
    return req;
  });
}

/** Whether labels satisfy every requirement; `key!=value` holds for labels without the key, as in Kubernetes. */
export function matchesLabels(selector: LabelSelector, labels: Record<string, string>): boolean {
  return selector.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case '=': return has && labels[r.key] === r.value;
      case '!=': return !has || labels[r.key] !== r.value;
      case 'exists': return has;
      case '!exists': return !has;
    }
  });
}
