// Package natstest starts a real embedded JetStream server for tests, in a
// temporary directory, with the hub's streams and buckets.
package natstest

import (
	"context"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus is a running test server and a connection to it.
type Bus struct {
	Server *server.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Store  *natsjs.Store
	Dir    string
}

// Start runs a server in t.TempDir() (in-process connections only) and
// stops it when the test ends.
func Start(t testing.TB) *Bus {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn runs a server whose JetStream files live in dir, so a test can
// stop it and start another on the same files.
func StartIn(t testing.TB, dir string) *Bus {
	t.Helper()
	ns, err := natsjs.StartEmbedded(natsjs.EmbeddedConfig{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := natsjs.Connect(ns, "", t.Name())
	if err != nil {
		ns.Shutdown()
		t.Fatal(err)
	}
	b := &Bus{Server: ns, Conn: nc, Dir: dir}
	t.Cleanup(b.Stop)
	if b.JS, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := natsjs.EnsureTopology(ctx, b.JS, natsjs.Topology{}); err != nil {
		t.Fatal(err)
	}
	if b.Store, err = natsjs.NewStore(ctx, b.JS); err != nil {
		t.Fatal(err)
	}
	return b
}

// Dial opens another in-process connection.
func (b *Bus) Dial(name string) (*nats.Conn, error) { return natsjs.Connect(b.Server, "", name) }

// Stop closes the connection and shuts the server down; safe to call twice.
func (b *Bus) Stop() {
	b.Conn.Close()
	b.Server.Shutdown()
	b.Server.WaitForShutdown()
}
