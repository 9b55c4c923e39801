const net = require('net');
const srv = net.createServer((s) => { s.on('data', () => s.write('OK\n')); s.on('error', () => {}); });
const socks = [];
srv.listen(0, '127.0.0.1', () => process.send({ port: srv.address().port }));
process.on('message', async (m) => {
  for (let i = 0; i < m.n; i++) {
    const c = net.connect(m.port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    c.write('HELLO\n');
    await new Promise((r) => c.once('data', r));
    socks.push(c);
  }
  process.send({ done: true });
});
