import * as React from 'react';
import { Gamify, GamifyError, type GamifyConfig, type Properties } from '@gamify/core';

export { Gamify, GamifyError };
export type { GamifyConfig, Properties, DeliveredEvent, GamifyErrorCode, RejectedEvent } from '@gamify/core';

interface ContextValue {
  client: Gamify | null;
}

const GamifyContext = React.createContext<ContextValue | null>(null);
GamifyContext.displayName = 'GamifyContext';

export interface GamifyProviderProps {
  /** Creates a client owned by the provider (started on mount, shut down on unmount). Read once. */
  config?: GamifyConfig;
  /** Or share a client you created yourself with `new Gamify(...)` from @gamify/core. */
  client?: Gamify;
  children?: React.ReactNode;
}

/**
 * Makes a Gamify client available to the hooks below. Server-side rendering
 * is safe: nothing here reads `window` during render, the client does not
 * start timers or listeners on the server, and events are only sent from
 * effects and event handlers, which never run on the server.
 */
export function GamifyProvider(props: GamifyProviderProps): React.ReactElement {
  const { config, client, children } = props;
  const [owned] = React.useState<Gamify | null>(() => {
    if (client) return null;
    if (!config) {
      throw new GamifyError('invalid_config', '<GamifyProvider> needs a `config` ({ apiKey, endpoint }) or a `client`');
    }
    // Constructing is SSR-safe; timers and listeners wait for start() in the effect below.
    return new Gamify({ ...config, autoStart: false });
  });
  const active = client ?? owned;

  React.useEffect(() => {
    if (!active) return undefined;
    active.start();
    if (active !== owned) return undefined; // a client passed in is the caller's to shut down
    return () => {
      // flushes and detaches; a remount (React StrictMode) calls start() again
      void active.shutdown();
    };
  }, [active, owned]);

  const value = React.useMemo<ContextValue>(() => ({ client: active }), [active]);
  return React.createElement(GamifyContext.Provider, { value }, children);
}

function useContextValue(hook: string): ContextValue {
  const ctx = React.useContext(GamifyContext);
  if (!ctx) throw new Error(`${hook} must be used inside <GamifyProvider>`);
  return ctx;
}

/** The Gamify client from the nearest <GamifyProvider>. */
export function useGamify(): Gamify | null {
  return useContextValue('useGamify()').client;
}

/** A stable `track(event, properties)`; it throws GamifyError for trusted or invalid events. */
export function useTrack(): (event: string, properties?: Properties) => string | undefined {
  const client = useContextValue('useTrack()').client;
  return React.useCallback(
    (event: string, properties?: Properties) => (client ? client.track(event, properties) : undefined),
    [client],
  );
}

/** A stable `identify(userId, traits)`. */
export function useIdentify(): (userId: string, traits?: Properties) => string | undefined {
  const client = useContextValue('useIdentify()').client;
  return React.useCallback(
    (userId: string, traits?: Properties) => (client ? client.identify(userId, traits) : undefined),
    [client],
  );
}

/**
 * Sends a `page_view` after mount, and again whenever `properties` or the
 * URL differ at a later render (e.g. pass `{ path }` from your router).
 * Fires once per distinct page even under React StrictMode.
 */
export function usePageView(properties?: Properties): void {
  const client = useContextValue('usePageView()').client;
  const last = React.useRef<string | null>(null);
  const propsKey = JSON.stringify(properties ?? {});
  React.useEffect(() => {
    if (!client) return;
    const href = typeof window !== 'undefined' ? window.location.href : '';
    const key = `${href}\n${propsKey}`;
    if (last.current === key) return;
    last.current = key;
    try {
      client.page(JSON.parse(propsKey) as Properties);
    } catch (err) {
      reportError(err);
    }
  });
}

export interface GamifyPageViewProps {
  /** Extra page_view properties (url, path, title and referrer are filled in). */
  properties?: Properties;
}

/** Renders nothing; sends a page_view like usePageView(). */
export function GamifyPageView(props: GamifyPageViewProps): null {
  usePageView(props.properties);
  return null;
}

export interface GamifyTrackClickProps {
  event: string;
  properties?: Properties;
  /** Receives tracking errors (e.g. a trusted event). Default: console.error. Clicks are never blocked. */
  onError?: (err: unknown) => void;
  children?: React.ReactNode;
}

function reportError(err: unknown, onError?: (err: unknown) => void): void {
  if (onError) onError(err);
  // eslint-disable-next-line no-console
  else console.error('[gamify]', err instanceof Error ? err.message : err);
}

/**
 * Tracks `event` when its child is clicked, then calls the child's own
 * onClick. A single element child gets the handler; anything else is wrapped
 * in a <span>.
 */
export function GamifyTrackClick(props: GamifyTrackClickProps): React.ReactElement {
  const { event, properties, onError, children } = props;
  const client = useContextValue('<GamifyTrackClick>').client;
  const track = () => {
    if (!client) return;
    try {
      client.track(event, properties);
    } catch (err) {
      reportError(err, onError);
    }
  };
  if (React.isValidElement(children)) {
    const child = children as React.ReactElement<{ onClick?: (e: unknown) => void }>;
    return React.cloneElement(child, {
      onClick: (e: unknown) => {
        track();
        child.props.onClick?.(e);
      },
    });
  }
  return React.createElement('span', { onClick: track }, children);
}
