// Package natsjs is Hikeshi's bus and event store on NATS JetStream: the
// embedded server, the streams and buckets, the append path with optimistic
// concurrency, and the read path for aggregates.
package natsjs

import (
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
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
	// Auth, when configured, is required of every connection.
	Auth Auth
	// HubPassword is the password of HubUser, the login of the hub's own
	// in-process connections when Auth is configured; no connection over
	// the network may log in as HubUser.
	HubPassword string
	// Protected names the hub's consumers on INCIDENTS, which a reader may
	// not change, delete, pull from or acknowledge for.
	Protected []string
}

// HubUser is the login of the hub's in-process connections.
const HubUser = "hikeshi-hub"

// HubInbox is the inbox prefix of the hub's connections when outside
// clients log in: their replies (stream reads, signals fetched) go there,
// where readers, who may subscribe to _INBOX.>, cannot listen.
const HubInbox = "_hikeshi.inbox"

// Auth is how outside clients of the embedded server log in: a user and
// password, a user's public nkey, or both; optionally over TLS.
type Auth struct {
	User, Password string
	// NKey is an outside client's public user nkey (U…); the client signs
	// with the seed, which never reaches the hub.
	NKey string
	// Full gives outside clients every permission (another hikeshi
	// process in split mode, an operator's tools). Otherwise they are
	// readers: they consume INCIDENTS and publish nowhere else.
	Full bool
	// Public makes readers consume only INCIDENTS_PUBLIC, the redacted
	// stream, and not INCIDENTS.
	Public bool
	// TLSCert and TLSKey are PEM files; with them clients must use TLS.
	TLSCert, TLSKey string
}

// Configured: outside clients must log in.
func (a Auth) Configured() bool { return a.User != "" || a.NKey != "" }

// Validate names what is missing or wrong.
func (a Auth) Validate() error {
	switch {
	case a.User != "" && a.Password == "":
		return fmt.Errorf("nats user %q has no password: set HIKESHI_NATS_PASSWORD", a.User)
	case a.User == "" && a.Password != "":
		return errors.New("a nats password without a user: set --nats-user")
	case a.User == HubUser:
		return fmt.Errorf("nats user %q is the hub's own login: choose another name", a.User)
	case a.NKey != "" && strings.HasPrefix(a.NKey, "S"):
		return errors.New("--nats-nkey is a seed, which must stay with the client: give its public key (U…; `nk -inkey seed.nk -pubout`)")
	case a.NKey != "" && !nkeys.IsValidPublicUserKey(a.NKey):
		return fmt.Errorf("--nats-nkey %q is not a public user nkey (U…)", a.NKey)
	case a.Full && a.Public:
		return errors.New("--nats-access is one of read, public or full")
	case (a.TLSCert == "") != (a.TLSKey == ""):
		return errors.New("nats TLS needs both --nats-tls-cert and --nats-tls-key")
	}
	return nil
}

// readerPermissions let a client consume INCIDENTS (live on incidents.>,
// or through consumers of its own) and the CHECKPOINTS that sign it, and
// nothing else: it cannot publish an event, touch another stream or
// bucket, or the hub's own consumers.
func readerPermissions(protected []string) *server.Permissions {
	p := streamReader(events.IncidentStream, events.IncidentSubjectPrefix, protected)
	cp := streamReader(events.CheckpointStream, events.CheckpointSubject, nil)
	p.Publish.Allow = append(p.Publish.Allow, cp.Publish.Allow...)
	p.Subscribe.Allow = append(p.Subscribe.Allow, events.CheckpointSubject)
	return p
}

// streamReader lets a client consume stream s (live on prefix.>), and
// nothing else.
func streamReader(s, prefix string, protected []string) *server.Permissions {
	allow := []string{
		"$JS.API.INFO", "$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.INFO." + s, "$JS.API.STREAM.MSG.GET." + s, "$JS.API.DIRECT.GET." + s, "$JS.API.DIRECT.GET." + s + ".>",
		// Only the create subjects that name the consumer: the bare
		// "CREATE.<stream>" takes the name from the body, where the deny
		// list below cannot see it (and would update a hub consumer). No
		// LIST either: it shows the hub consumers' deliver subjects.
		"$JS.API.CONSUMER.CREATE." + s + ".>", "$JS.API.CONSUMER.DURABLE.CREATE." + s + ".*",
		"$JS.API.CONSUMER.INFO." + s + ".*", "$JS.API.CONSUMER.DELETE." + s + ".*",
		"$JS.API.CONSUMER.NAMES." + s, "$JS.API.CONSUMER.MSG.NEXT." + s + ".*",
		"$JS.ACK." + s + ".>", "$JS.FC." + s + ".>",
	}
	var deny []string
	for _, c := range protected {
		deny = append(deny, "$JS.API.CONSUMER.*."+s+"."+c, "$JS.API.CONSUMER.*."+s+"."+c+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+s+"."+c, "$JS.API.CONSUMER.MSG.NEXT."+s+"."+c, "$JS.ACK."+s+"."+c+".>")
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: allow, Deny: deny},
		Subscribe: &server.SubjectPermission{Allow: []string{prefix + ".>", "_INBOX.>"}},
	}
}

// authOptions sets who may connect: the hub in process, outside clients
// with their credentials.
func authOptions(opts *server.Options, cfg EmbeddedConfig) error {
	a := cfg.Auth
	if err := a.Validate(); err != nil {
		return err
	}
	if a.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: a.TLSCert, KeyFile: a.TLSKey})
		if err != nil {
			return fmt.Errorf("nats TLS: %w", err)
		}
		opts.TLSConfig, opts.TLS = tc, true
	}
	if !a.Configured() {
		return nil
	}
	if cfg.HubPassword == "" {
		return errors.New("embedded nats: auth configured without the hub's own password")
	}
	var perms *server.Permissions // nil: everything
	switch {
	case a.Public:
		perms = streamReader(events.PublicStream, events.PublicSubjectPrefix, nil)
	case !a.Full:
		perms = readerPermissions(cfg.Protected)
	}
	opts.Users = []*server.User{{
		Username: HubUser, Password: cfg.HubPassword,
		AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}},
	}}
	if a.User != "" {
		opts.Users = append(opts.Users, &server.User{Username: a.User, Password: a.Password, Permissions: perms})
	}
	if a.NKey != "" {
		opts.Nkeys = []*server.NkeyUser{{Nkey: a.NKey, Permissions: perms}}
	}
	return nil
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
	if err := authOptions(opts, cfg); err != nil {
		return nil, err
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

// A connection is stale after maxPingsOut pings of pingInterval without
// an answer.
const (
	pingInterval = 2 * time.Second
	maxPingsOut  = 3
)

// Connect opens a client connection: in-process to ns when it is non-nil,
// otherwise to url. name shows in the server's connection list; more
// options (a login) may follow.
func Connect(ns *server.Server, url, name string, more ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// A server that went silent (a partition, a machine gone without
		// closing its sockets) is left for another of the cluster within
		// seconds; the default (2 min, 2 pings) held writes that long.
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
	}, more...)
	if ns != nil {
		opts = append(opts, nats.InProcessServer(ns))
		url = ""
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", Redacted(url), err)
	}
	return nc, nil
}

// Redacted is a server URL list (comma-separated) fit to print: a
// password in it is replaced by xxxxx.
func Redacted(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := neturl.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
