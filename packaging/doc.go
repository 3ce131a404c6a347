// Package packaging holds bindguard's Debian packaging (nfpm.yaml, the maintainer scripts and
// the example policy shipped as /etc/bindguard/bindguard.yaml.example) and its tests: the
// example is the README's, and, as root on Debian, `make package` builds a .deb that
// installs with dpkg -i, runs, and purges without a trace. It has no Go API.
package packaging
