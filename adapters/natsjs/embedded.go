// Package natsjs is Hikeshi's bus and event store on NATS JetStream: the
// embedded server, the streams and buckets, the append path with optimistic
// concurrency, and the read path for aggregates.
package natsjs

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures the in-process NATS server.
type EmbeddedConfig struct {
	// StoreDir holds JetStream's files.
	StoreDir string
	// Listen is host:port for outside clients; empty accepts in-process
	// connections only.
	Listen string
	// SyncAlways fsyncs every message before the ack. Without it the server
	// fsyncs every 2 minutes: a process crash loses nothing, an OS crash or
	// power loss can lose the last acknowledged events.
	SyncAlways bool
}

// StartEmbedded starts a JetStream server in this process and waits until
// it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "hikeshi",
		JetStream:  true,
		StoreDir:   filepath.Clean(cfg.StoreDir),
		NoSigs:     true,
		NoLog:      true,
		DontListen: cfg.Listen == "",
		// The hub's own writers and readers; outside clients are few.
		MaxPayload: 1 << 20,
	}
	if cfg.SyncAlways {
		opts.SyncAlways = true
		opts.SyncInterval = time.Second // ignored with SyncAlways, set for clarity
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen %q: bad port: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s (is the data dir locked by another hikeshi?)")
	}
	return ns, nil
}

// Connect opens a client connection: in-process to ns when it is non-nil,
// otherwise to url. name shows in the server's connection list.
func Connect(ns *server.Server, url, name string) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	if ns != nil {
		opts = append(opts, nats.InProcessServer(ns))
		url = ""
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	return nc, nil
}
