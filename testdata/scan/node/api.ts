import Fastify from 'fastify';

const server = Fastify({ logger: true });
const port: number = Number(process.env.PORT ?? 3001);

async function start(host: string = '0.0.0.0') {
  await server.listen({ port }); // Fastify's default host is localhost
  await server.listen({ port: 3002, host: '0.0.0.0' });
  await server.listen({ port: 3003, host });
}
start();
