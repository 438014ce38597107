// The panel's React component: a host element the Rust app mounts into, fed
// with Grafana's data on every change; a one-line message when WebAssembly
// cannot run or the Rust side panicked.
import React, { useCallback, useEffect, useRef, useState } from 'react';
import { LoadingState, PanelProps } from '@grafana/data';
import { useTheme2 } from '@grafana/ui';

import { Panel as WasmPanel } from '../../pkg/statescope_panel.js';
import { FrameSender } from './frames';
import type { StatescopeOptions } from './options';
import { crashedWith, crashMessage, loadFailureMessage, loadWasm, onCrash } from './wasm';

export function StatescopePanel(props: PanelProps<StatescopeOptions>) {
  const theme = useTheme2();
  const host = useRef<HTMLDivElement>(null);
  const panel = useRef<WasmPanel | null>(null);
  // What this panel's wasm side keeps of the frames; a new panel starts empty.
  const sender = useRef(new FrameSender());
  const [ready, setReady] = useState(false);
  const [failure, setFailure] = useState<string | null>(() => {
    const crashed = crashedWith();
    return crashed ? crashMessage(crashed) : null;
  });

  /** Calls into WebAssembly; any exception ends this panel with a message. */
  const call = useCallback((f: (p: WasmPanel) => void) => {
    const p = panel.current;
    if (!p || crashedWith()) {
      return;
    }
    try {
      f(p);
    } catch (e) {
      panel.current = null;
      setFailure(crashMessage(crashedWith() ?? (e instanceof Error ? e.message : String(e))));
    }
  }, []);

  useEffect(() => {
    let cancelled = false;
    const unsubscribe = onCrash((message: string) => setFailure(crashMessage(message)));
    loadWasm().then(
      () => {
        if (cancelled || !host.current || crashedWith()) {
          return;
        }
        try {
          panel.current = new WasmPanel(host.current);
          sender.current = new FrameSender();
          setReady(true);
        } catch (e) {
          setFailure(crashMessage(crashedWith() ?? (e instanceof Error ? e.message : String(e))));
        }
      },
      (e) => {
        if (!cancelled) {
          console.error('Statescope: WebAssembly failed to load', e);
          setFailure(loadFailureMessage(e));
        }
      },
    );
    return () => {
      cancelled = true;
      unsubscribe();
      const p = panel.current;
      panel.current = null;
      if (p && !crashedWith()) {
        try {
          p.free();
        } catch {
          // The instance is gone with the page; nothing to release.
        }
      }
    };
  }, []);

  const { data, options, timeRange, replaceVariables, width, height } = props;
  useEffect(() => {
    // While the first query runs there is nothing to show but "Loading…".
    if (!ready || (data.state === LoadingState.Loading && data.series.length === 0)) {
      return;
    }
    call((p) => sender.current.update(p, props, theme));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ready, data, options, timeRange, replaceVariables, theme, call]);

  useEffect(() => {
    if (ready) {
      call((p) => p.resize(width, height));
    }
  }, [ready, width, height, call]);

  useEffect(() => {
    if (!ready) {
      return;
    }
    const timer = window.setInterval(() => call((p) => p.tick(Date.now())), 1000);
    return () => window.clearInterval(timer);
  }, [ready, call]);

  if (failure) {
    return React.createElement(
      'div',
      {
        role: 'alert',
        'data-testid': 'statescope-error',
        style: { width, height, display: 'flex', alignItems: 'center', justifyContent: 'center', textAlign: 'center', padding: 8, color: theme.colors.error.text },
      },
      failure,
    );
  }
  return React.createElement('div', { ref: host, 'data-testid': 'statescope-panel', style: { width, height } });
}
