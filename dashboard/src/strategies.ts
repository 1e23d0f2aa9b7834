// The routing strategies, as the gateway names them (a Rust test checks this
// list against StrategyKind::ALL).
export const STRATEGIES = [
  "priority", "weighted", "round-robin", "fill-first", "random", "strict-random", "least-used", "p2c",
  "cost-optimized", "context-optimized", "lkgp", "reset-aware", "reset-window", "headroom", "auto",
  "fusion", "context-relay",
];
