package scan

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets feed arbitrary bytes to every parser: none may panic or hang, and every
// finding must carry a line inside the file.

func fuzzKind(f *testing.F, kind fileKind, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		fs, _ := scanBytes(kind, "f", src)
		lines := 1
		for _, c := range src {
			if c == '\n' {
				lines++
			}
		}
		for _, x := range fs {
			if x.Line < 0 || x.Line > lines {
				t.Errorf("finding at line %d of a %d-line file", x.Line, lines)
			}
		}
	})
}

func FuzzCompose(f *testing.F) {
	fuzzKind(f, kindCompose, "services:\n  a:\n    ports: [\"6379:6379\", {target: 1, host_ip: \"::\"}]\n    network_mode: host\n", "services: [1, 2]\n", "a: &x\n  b: *x\n")
}

func FuzzKube(f *testing.F) {
	fuzzKind(f, kindYAML, "apiVersion: v1\nkind: Service\nspec:\n  type: NodePort\n  ports: [{nodePort: 30000}]\n  externalIPs: [1.2.3.4]\n", "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  apiVersion: v1\n  spec: {hostNetwork: true, containers: [{ports: [{hostPort: 1}]}]}\n",
		"internal_services:\n  a: {bind_address: \"0.0.0.0:8001\", access: localhost_only, protocol: UDP}\n  b: {bind_address: \"[::]:99999\"}\nexternal_access:\n  n: {http_port: \":80\", https_port: 7}\n")
}

func FuzzDockerfile(f *testing.F) {
	fuzzKind(f, kindDockerfile, "CMD [\"a\", \"--host\", \"0.0.0.0\"]\n", "ENTRYPOINT sh -c 'x --bind=[::]:80' \\\n  --port 1\n", "CMD [\"sh\", \"-c\", \"--host\"]")
}

func FuzzRedis(f *testing.F) {
	fuzzKind(f, kindRedis, "bind * -::1\nport 1\nprotected-mode no\n", "bind\n")
}

func FuzzPostgres(f *testing.F) {
	fuzzKind(f, kindPostgres, "listen_addresses = '*,localhost'\nport=1\n", "=\n")
}

func FuzzNginx(f *testing.F) {
	fuzzKind(f, kindNginx, "server { listen [::]:443 ssl; listen 80; listen unix:/x; }\n", "listen [;\n")
}

func FuzzSystemd(f *testing.F) {
	fuzzKind(f, kindSystemd, "[Socket]\nListenStream=[::1]:80\nListenDatagram=514\n", "ListenStream=[\n")
}

func FuzzGo(f *testing.F) {
	f.Add([]byte("package p\nimport (\"net\";\"fmt\")\nconst h = \"0.0.0.0\"\nfunc f() { net.Listen(\"tcp\", fmt.Sprintf(\"%s:%d\", h, 1)) }\n"))
	f.Add([]byte("package p\nvar a = b\nvar b = a\nfunc f() { http.ListenAndServe(a, nil) }\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "f.go"), src, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := Scan(context.Background(), []string{dir}, Options{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Problems {
			if len(p.Msg) > 22 && p.Msg[:22] == "internal error while s" {
				t.Errorf("parser panicked: %s", p)
			}
		}
	})
}

func writeFile(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func FuzzPython(f *testing.F) {
	fuzzKind(f, kindPython,
		"import socket, uvicorn\nHOST = '0.0.0.0'\ndef f(port=1):\n    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n    s.bind(('', port))\n    uvicorn.run(app, host=HOST or '::', port=int(os.getenv('P', '8000')))\n",
		"from aiohttp import web\nweb.run_app(app, host=['0.0.0.0', '::1'])\napp.run(f'{x}:1', **kw)\n",
		"p.add_argument('--bind', default='0.0.0.0:' + str(P))\nbind = ['[::]:80', 'unix:/x']\nclass C:\n    H = '::'\n    def m(self):\n        self.s.bind((self.H, 1))\n",
		"a = b\nb = a\nx.bind((a, b))\n(((((((((\n",
		"class Bind(Setting):\n    cli = ['--bind']\n    if x:\n        default = ['0.0.0.0:{0}'.format(p)]\n    else:\n        default = '[::]:%d' % 1\nclass Adjustments:\n    host = m(m('0.0.0.0'))\n    port = m(80)\n    listen = [f'{host}:{port}']\n",
		"import argparse, socket\ndef g(*a):\n    i = socket.getaddrinfo(*a, 0, 0, 0, socket.AI_PASSIVE)\n    x, y, z, w, sa = next(iter(i))\n    return x, sa\ndef t(S=HTTPServer, bind=None, port=1):\n    _, addr = g(bind, port)\n    S(addr, H)\n    t(bind=bind)\nclass D(D): pass\np.add_argument('-b', '--bind', dest=d)\nargs, r = p.parse_known_args()\nt(S=D, bind=args.bind)\nfor a, b in c: s.bind(b)\n",
		"def f(h):\n    f(h)\n    socket.socket().bind((h, 1))\n    for r in socket.getaddrinfo(h, 1, flags=AI_PASSIVE): s.bind(r[4])\na, b = b, a\nx.bind(a)\n")
}

func FuzzJavaScript(f *testing.F) {
	fuzzKind(f, kindJS,
		"const PORT = process.env.PORT || 3000, HOST = '0.0.0.0';\napp.listen(PORT, HOST, () => {});\nhttp.createServer().listen({port: 1, ...o});\n",
		"const dgram = require('dgram'); const s = dgram.createSocket('udp6'); s.bind({port: 53});\nBun.serve({port: 1, hostname: `${h}`});\n",
		"a = b; b = a; x.listen(a, b);\n{{{{{{{{[[[[(((\n")
}

func FuzzTypeScript(f *testing.F) {
	fuzzKind(f, kindTS,
		"import Fastify from 'fastify';\nconst s = Fastify();\nasync function go(host: string = '0.0.0.0') { await s.listen({ port: Number(process.env.PORT ?? 1) as number, host }); }\n",
		"const p = <number>(3000!);\nserver.listen(p satisfies number);\n")
}
