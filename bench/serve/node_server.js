// bench/serve/node_server.js: the Node.js reference of bench/serve/run.sh, a minimal `http`
// server answering GET /v1/customers/:id/prediction from an in-memory Map of N entries whose
// values have the shape and size of Engage's answer. No authentication.
//
// Usage: node node_server.js --customers N --port-file FILE [--workers K]
//   --workers 0 (default): one process; K > 0: the `cluster` module with K workers, each
//   holding its own Map, sharing one port. The bound port goes to FILE once all listen.
'use strict';
const cluster = require('cluster');
const fs = require('fs');
const http = require('http');

const args = {customers: 1000000, 'port-file': '', workers: 0};
for (let i = 2; i + 1 < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const customers = Number(args.customers);
const workers = Number(args.workers);

function writePort(port) {
  const tmp = args['port-file'] + '.tmp';
  fs.writeFileSync(tmp, `${port}\n`);
  fs.renameSync(tmp, args['port-file']);
}

// Deterministic pseudo-random numbers in [0, 1) (mulberry32), so the bodies vary per customer.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function serve() {
  const scoredAt = new Date().toISOString().replace(/\.(\d+)Z$/, '.$1000Z');
  const cutoff = scoredAt.slice(0, 10);
  const features = ['recency_days', 'orders_90d', 'sessions_30d', 'avg_order_value'];
  const r = rng(42);
  const f = (x) => Number(x.toPrecision(7));  // about what a float prints as
  const map = new Map();
  for (let i = 0; i < customers; i++) {
    const score = r();
    map.set(String(i), JSON.stringify({
      customer_id: String(i),
      model: 'engagement',
      model_version: 1,
      score: f(score),
      segment: score > 0.66 ? 'high' : score > 0.33 ? 'medium' : 'low',
      p_alive: f(r()),
      expected_transactions: f(5 * r()),
      clv: f(400 * r()),
      reasons: features.map((feature) => ({feature, contribution: f(r() - 0.5)})),
      cutoff,
      scored_at: scoredAt,
    }));
  }
  const prefix = '/v1/customers/';
  const suffix = '/prediction';
  const server = http.createServer((req, res) => {
    const url = req.url;
    if (req.method === 'GET' && url.startsWith(prefix) && url.endsWith(suffix)) {
      const body = map.get(url.slice(prefix.length, url.length - suffix.length));
      if (body !== undefined) {
        res.writeHead(200, {'Content-Type': 'application/json',
                            'Content-Length': Buffer.byteLength(body)});
        res.end(body);
        return;
      }
    }
    res.writeHead(404, {'Content-Type': 'application/json'});
    res.end('{"error":{"code":"NOT_FOUND"}}');
  });
  server.keepAliveTimeout = 60000;
  server.listen(0, '127.0.0.1', () => {
    if (workers === 0 && args['port-file']) writePort(server.address().port);
  });
}

if (workers > 0 && cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', (worker, address) => {
    if (++listening === workers && args['port-file']) writePort(address.port);
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  const stop = () => {
    for (const id in cluster.workers) cluster.workers[id].kill();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  serve();
}
