module github.com/realm-ai/realm/clients/go

go 1.19

require github.com/gorilla/websocket v1.5.0

// Built offline against Debian's golang-github-gorilla-websocket-dev (no Go module proxy here):
// GOPROXY=off GOFLAGS=-mod=mod go test ./... (see test.sh). Outside Debian, drop this line.
replace github.com/gorilla/websocket => /usr/share/gocode/src/github.com/gorilla/websocket
