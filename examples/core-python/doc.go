// Package corepython is the seed's core service, a Flask app (app.py), run by `bindguard run`:
// bound on the policy's 127.0.0.1:8001 and, with --guard, behind bindguard's client check.
// See README.md; the test runs it under Debian's gunicorn in a network namespace.
package corepython
