const http = require('http');
const net = require('node:net');
const express = require('express');
const dgram = require('dgram');

const PORT = process.env.PORT || 3000;
const HOST = '0.0.0.0';
const config = { host: '127.0.0.1', port: 4000 };
const DENY = ['0.0.0.0', '::']; // a deny list is not a bind

const app = express();
app.listen(PORT); // no host: '::', every interface
app.listen(PORT, HOST, () => console.log('up'));
app.listen(config.port, config.host);

http.createServer((req, res) => res.end('ok')).listen(8080, '::1'); // loopback
http.createServer(app).listen({ port: 8443, host: '0.0.0.0' });
net.createServer().listen({ path: '/run/app.sock' }); // unix socket
net.createServer().listen('/run/other.sock');
net.createServer().listen(7000, function () {});

const sock = dgram.createSocket('udp4');
sock.bind(5353);

function isWildcard(a) {
  return a === '0.0.0.0' || DENY.includes(a); // a comparison
}

history.listen(onChange); // not a server
fetch('http://0.0.0.0:3000/'); // a client URL
// bindguard:allow js-listen -- metrics, firewalled to the monitoring VLAN
app.listen(9100, '0.0.0.0');
