// Our own structural types for the Handlebars objects that dogpile/handlebars takes and returns,
// so that its declarations (and dogpile/express's, which re-export from it) never import the
// 'handlebars' package: an app that uses dogpile/express with Nunjucks or Eta and keeps
// skipLibCheck off must typecheck without handlebars installed. `Handlebars` itself and every
// `Handlebars.create()` environment fit `HandlebarsEnv` (test/fixtures/consumer/full.ts checks it
// against the real package).

/** A Handlebars environment: `Handlebars` itself or `Handlebars.create()` (the parts used here). */
export interface HandlebarsEnv {
  /** Compiles a template source or a parsed AST. */
  compile(input: unknown, options?: HandlebarsCompileOptions): (context?: unknown, options?: HandlebarsRuntimeOptions) => string;
  /** Turns a precompiled template spec into a template function (`Handlebars.template`). */
  template(spec: unknown): (context?: unknown, options?: HandlebarsRuntimeOptions) => string;
  /** Parses a template source into an AST (on the main `Handlebars` export). */
  parse(input: string): unknown;
  /** Registers a partial by name. */
  registerPartial(name: string, partial: unknown): void;
  /** Registers a helper by name. */
  // biome-ignore lint/suspicious/noExplicitAny: Handlebars calls helpers with any arguments and `this`.
  registerHelper(name: string, helper: (this: any, ...args: any[]) => unknown): void;
  /** The registered partials by name. */
  readonly partials: { [name: string]: unknown };
  /** Marks a string as already-escaped output. */
  SafeString: HandlebarsSafeStringClass;
  /** A new isolated environment with its own helpers and partials. */
  create(): HandlebarsEnv;
}

/** Handlebars's `SafeString` class. */
export interface HandlebarsSafeStringClass {
  /** Wraps `value` so that Handlebars outputs it unescaped. */
  new (value: string): unknown;
}

/** Handlebars compile options (passed through to `compile`). */
export interface HandlebarsCompileOptions {
  /** Whether `@data` variables are tracked. Default true. */
  data?: boolean;
  /** Mustache-style recursive field lookup. Default false. */
  compat?: boolean;
  /** Helpers known at compile time, by name. */
  knownHelpers?: { [name: string]: boolean };
  /** Allow only `knownHelpers`. Default false. */
  knownHelpersOnly?: boolean;
  /** Do not HTML-escape output. Default false. */
  noEscape?: boolean;
  /** Throw on missing fields. Default false. */
  strict?: boolean;
  /** Like `strict`, without checking the last path segment. Default false. */
  assumeObjects?: boolean;
  /** Do not indent standalone partials. Default false. */
  preventIndent?: boolean;
  /** Do not remove standalone tag whitespace. Default false. */
  ignoreStandalone?: boolean;
  /** Partials see only the context passed to them explicitly. Default false. */
  explicitPartialContext?: boolean;
}

/** Handlebars runtime options (the second argument of a compiled template). */
export interface HandlebarsRuntimeOptions {
  /** Extra helpers for this render, by name. */
  helpers?: Record<string, (...args: never[]) => unknown>;
  /** Extra partials for this render, by name. */
  // biome-ignore lint/suspicious/noExplicitAny: a compiled partial takes any context.
  partials?: Record<string, string | ((context: any, options?: any) => string)>;
  /** Extra decorators for this render, by name. */
  decorators?: Record<string, (...args: never[]) => unknown>;
  /** The `@data` root for this render. */
  data?: unknown;
  /** Allow calls to helperMissing. Default false. */
  allowCallsToHelperMissing?: boolean;
  /** Prototype properties templates may read, by name. */
  allowedProtoProperties?: { [name: string]: boolean };
  /** Prototype methods templates may call, by name. */
  allowedProtoMethods?: { [name: string]: boolean };
  /** Allow every prototype property (unsafe with untrusted templates). Default false. */
  allowProtoPropertiesByDefault?: boolean;
  /** Allow every prototype method (unsafe with untrusted templates). Default false. */
  allowProtoMethodsByDefault?: boolean;
}
