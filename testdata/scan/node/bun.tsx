Bun.serve({ port: 3004, fetch: () => new Response('ok') });
Bun.serve({ port: 3005, hostname: 'localhost', fetch: () => new Response('ok') });
