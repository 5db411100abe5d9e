/**
 * A small stand-in for RapidPro's flow engine (nyaruka/goflow), for the templates the companion's flow
 * generator writes: it renders a Call Webhook action's URL, headers and body as goflow does, with no
 * escaping of its own (flows/actions/call_webhook.go: run.EvaluateTemplate, then strings.TrimSpace).
 * Template syntax per excellent/scanner.go: `@@` is a literal @, `@(…)` an expression up to its
 * balancing parenthesis (not counting those in "…"), `@top.path` a variable when `top` is one of
 * flows.RunContextTopLevels. Only the functions the generated flows use are known; any other throws.
 */

/** The parts of a run's context (goflow's `@contact`, `@fields`, `@run`, `@node`, `@results`) the flows read. */
export interface RunContext {
  contact: { uuid: string; name: string; urn: string; fields: Record<string, string | null> };
  run: { uuid: string; created_on: string; flow: { uuid: string; name: string } };
  /** The node being run, and how many times this run has entered it. */
  node: { uuid: string; visit_count: number };
  results: Record<string, { value: string; category: string }>;
}

type Value = string | number | boolean | null | Value[] | { [key: string]: Value };

/** flows.RunContextTopLevels. */
const TOP_LEVELS = ['child', 'contact', 'fields', 'globals', 'input', 'legacy_extra', 'node', 'parent', 'locals', 'results', 'resume', 'run', 'ticket', 'trigger', 'urns', 'webhook'];

/**
 * goflow's url_encode: Go's url.QueryEscape with `+` then replaced by `%20` (excellent/functions/
 * builtin.go URLEncode). QueryEscape leaves only ASCII letters, digits and `-_.~`, and escapes every
 * other UTF-8 byte as %XX in upper case; its space is `+`, so a space ends as `%20` and a `+` as `%2B`.
 */
export function goflowUrlEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * goflow's json: gocommon's jsonx.Marshal, Go's encoding/json with HTML escaping off. Objects are Go
 * maps there (excellent/types/object.go), written with their keys sorted; strings escape `"`, `\`,
 * control characters and U+2028/U+2029, and keep `<`, `>`, `&` and all other text as it is.
 */
export function goflowJson(value: Value): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(goflowJson).join(',')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${keys.map((key) => `${goflowJson(key)}:${goflowJson(value[key]!)}`).join(',')}}`;
  }
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16)}`);
  }
  return JSON.stringify(value);
}

/** A value as text in a template: null is empty, objects are JSON (goflow renders them so). */
function asText(value: Value): string {
  if (value === null) return '';
  return typeof value === 'string' ? value : typeof value === 'object' ? goflowJson(value) : String(value);
}

/**
 * format_date for a date written as ISO 8601 (a RapidPro datetime field), read in the zone it is
 * written in; the layout tokens YYYY, YY, MM, M, DD, D and the separators goflow ignores.
 */
function formatDate(date: string, layout: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(date);
  if (!match) throw new Error(`format_date: not a date: ${date}`);
  const [, year, month, day] = match as unknown as [string, string, string, string];
  const tokens: Record<string, string> = { YYYY: year, YY: year.slice(2), MM: month, M: String(Number(month)), DD: day, D: String(Number(day)) };
  return layout.replace(/YYYY|YY|MM|M|DD|D|[^ :/.,T\-_]/g, (token) => {
    if (token in tokens) return tokens[token]!;
    throw new Error(`format_date: ${token} is not in the layouts this fake knows`);
  });
}

const FUNCTIONS: Record<string, (...args: Value[]) => Value> = {
  url_encode: (text) => goflowUrlEncode(asText(text!)),
  json: (value) => goflowJson(value!),
  object: (...pairs) => Object.fromEntries(Array.from({ length: pairs.length / 2 }, (_, index) => [asText(pairs[2 * index]!), pairs[2 * index + 1]!])),
  extract_object: (object, ...keys) => Object.fromEntries(keys.map((key) => [asText(key), (object as Record<string, Value>)[asText(key)] ?? null])),
  format_date: (date, layout) => formatDate(asText(date!), asText(layout!)),
};

/** foreach_value(object, function, args…): the object with the function (and args) applied to each value. */
const foreachValue = (...args: Array<Value | { fn: string }>): Value => {
  const [object, fnRef, ...rest] = args as [Record<string, Value>, { fn: string }, ...Value[]];
  const fn = FUNCTIONS[fnRef.fn]!;
  return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, fn(value, ...rest)]));
};

/** An expression's parser and evaluator: function calls, "text" literals and dotted variables. */
function evaluate(expression: string, context: RunContext): Value {
  let at = 0;
  const skipSpace = () => {
    while (/\s/.test(expression[at] ?? '')) at++;
  };
  const expect = (char: string) => {
    skipSpace();
    if (expression[at] !== char) throw new Error(`expected ${char} at ${at} in ${expression}`);
    at++;
  };
  // `fields` is the contact's fields, as in goflow's run context.
  const root = { ...context, fields: context.contact.fields } as unknown as Value;
  const variable = (path: string): Value =>
    path.split('.').reduce<Value>((value, key) => (value && typeof value === 'object' && !Array.isArray(value) ? (value[key] ?? null) : null), root);
  const parseValue = (): Value | { fn: string } => {
    skipSpace();
    if (expression[at] === '"') {
      let text = '';
      for (at++; expression[at] !== '"'; at++) {
        if (at >= expression.length) throw new Error(`unterminated text in ${expression}`);
        if (expression[at] === '\\') at++;
        text += expression[at];
      }
      at++;
      return text;
    }
    const name = /^[A-Za-z_][\w.]*/.exec(expression.slice(at))?.[0];
    if (!name) throw new Error(`unexpected ${expression[at]} at ${at} in ${expression}`);
    at += name.length;
    skipSpace();
    // A function's bare name is a function value (foreach_value's argument); any other name a variable.
    if (expression[at] !== '(') return name in FUNCTIONS ? { fn: name } : variable(name);
    const fn = name === 'foreach_value' ? foreachValue : FUNCTIONS[name];
    if (!fn) throw new Error(`function ${name} is not one the generated flows use`);
    at++;
    const args: Array<Value | { fn: string }> = [];
    skipSpace();
    if (expression[at] === ')') at++;
    else {
      for (;;) {
        args.push(parseValue());
        skipSpace();
        if (expression[at] === ',') at++;
        else break;
      }
      expect(')');
    }
    return fn(...(args as Value[]));
  };
  const value = parseValue();
  skipSpace();
  if (at !== expression.length) throw new Error(`trailing text at ${at} in ${expression}`);
  return value as Value;
}

/** Renders a template as goflow's EvaluateTemplate does: expressions replaced by their text, nothing escaped. */
export function renderTemplate(template: string, context: RunContext): string {
  let out = '';
  let at = 0;
  while (at < template.length) {
    const next = template.indexOf('@', at);
    if (next === -1 || next === template.length - 1) {
      out += template.slice(at);
      break;
    }
    out += template.slice(at, next);
    const after = template[next + 1]!;
    if (after === '@') {
      out += '@';
      at = next + 2;
    } else if (after === '(') {
      let depth = 0;
      let end = next + 1;
      let inText = false;
      let escaped = false;
      for (; end < template.length; end++) {
        const char = template[end]!;
        if (inText) {
          if (char === '"' && !escaped) inText = false;
          escaped = char === '\\';
        } else if (char === '"') inText = true;
        else if (char === '(') depth++;
        else if (char === ')' && --depth === 0) break;
      }
      if (end >= template.length) {
        out += template.slice(next);
        break;
      }
      out += asText(evaluate(template.slice(next + 2, end), context));
      at = end + 1;
    } else {
      const identifier = /^[\p{L}\p{N}_]+(?:\.[\p{L}\p{N}_]+)*/u.exec(template.slice(next + 1))?.[0];
      if (identifier && TOP_LEVELS.includes(identifier.split('.')[0]!.toLowerCase())) out += asText(evaluate(identifier, context));
      else out += `@${identifier ?? ''}`;
      at = next + 1 + (identifier?.length ?? 0);
    }
  }
  return out.trim();
}

/** A Call Webhook action as goflow evaluates it before the call: its URL, each header and its body rendered. */
export function renderWebhookCall(action: { method: string; url: string; headers: Record<string, string>; body: string }, context: RunContext) {
  const render = (template: string) => renderTemplate(template, context);
  const headers = Object.fromEntries(Object.entries(action.headers).map(([name, value]) => [name, render(value)]));
  return { method: action.method.toUpperCase(), url: render(action.url), headers, body: render(action.body) };
}
