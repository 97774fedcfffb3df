package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/hub"
)

// hubFlags are the flags serve and replay share.
func hubFlags(f *flags, cfg *hub.Config) {
	f.StringVar(&cfg.DataDir, "data-dir", "./hikeshi-data", "directory for the embedded NATS store and the timeline database")
	f.StringVar(&cfg.NATSURL, "nats", "", "external NATS server URL (e.g. nats://127.0.0.1:4222); empty runs NATS JetStream in-process")
}

// moduleFlags are the flags of what the modules are given, which serve and
// replay share; it returns the path of hikeshi.yaml.
func moduleFlags(f *flags, cfg *hub.Config) *string {
	f.StringVar(&cfg.CasePrefix, "case-prefix", "INC", "prefix of case numbers (INC-42)")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL people use to reach the hub, for links in messages (default http://<listen>)")
	return f.String("config", "", "hikeshi.yaml with the integrations (default: ./hikeshi.yaml when it exists)")
}

// loadConfig reads hikeshi.yaml at path, or ./hikeshi.yaml when there is
// one and no path is given.
func loadConfig(path string) (*config.File, error) {
	if path == "" {
		return config.Load("hikeshi.yaml", false)
	}
	return config.Load(path, true)
}

func serve(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := hub.Config{Modules: modules}
	f := newFlags("serve", "[flags]")
	hubFlags(f, &cfg)
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "HTTP address of the API")
	f.StringVar(&cfg.Token, "token", "", "bearer token required on /api/v1 (required when listening beyond loopback)")
	f.StringVar(&cfg.NATSListen, "nats-listen", "", "also expose the embedded NATS server to other processes on host:port (e.g. 127.0.0.1:4222); beyond loopback only with a NATS login")
	f.StringVar(&cfg.NATSAuth.User, "nats-user", "", "user outside clients of --nats-listen log in as; its password comes from HIKESHI_NATS_PASSWORD")
	f.StringVar(&cfg.NATSAuth.NKey, "nats-nkey", "", "public user nkey (U…) outside clients of --nats-listen may log in with, signing with its seed")
	natsAccess := f.String("nats-access", "read", "what outside clients of --nats-listen may do: read (consume INCIDENTS), public (consume only INCIDENTS_PUBLIC, confidential incidents redacted; needs the public module) or full (another hikeshi process, operator tools)")
	f.StringVar(&cfg.NATSAuth.TLSCert, "nats-tls-cert", "", "PEM certificate: clients of --nats-listen must use TLS")
	f.StringVar(&cfg.NATSAuth.TLSKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
	f.BoolVar(&cfg.SyncAlways, "sync-always", false, "fsync every event before acknowledging it (slower; survives power loss on a single node)")
	f.IntVar(&cfg.Replicas, "replicas", 1, "stream replicas (3 on a JetStream cluster)")
	f.StringVar(&cfg.NodeName, "node-name", "", "this hub's name among replicas sharing one NATS: its timeline gets a consumer of its own, timeline-<name> (letters, digits, - and _; empty: the single hub's consumer, timeline)")
	f.DurationVar(&cfg.NodeRetireAfter, "node-retire-after", hub.DefaultNodeRetireAfter, "with --node-name: NATS deletes this replica's timeline consumer after it has had no reader this long ('hikeshi replica retire' does it at once)")
	t := httpapi.DefaultTimeouts
	f.DurationVar(&cfg.HTTPTimeouts.Read, "http-read-timeout", t.Read, "longest time a client may take to send a whole request, body included (headers: at most "+t.ReadHeader.String()+")")
	f.DurationVar(&cfg.HTTPTimeouts.Write, "http-write-timeout", t.Write, "longest time to answer a request, from the end of its headers (the event stream and timeline long polls are exempt)")
	f.DurationVar(&cfg.HTTPTimeouts.Idle, "http-idle-timeout", t.Idle, "how long a kept-alive connection may wait for its next request")
	cfgPath := moduleFlags(f, &cfg)
	targets := f.String("targets", "", "comma-separated parts to run (default: api, timeline and every integration configured in hikeshi.yaml)")
	level := f.String("log-level", "info", "debug, info, warn or error")
	_, err := f.parse(args)
	if err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: --log-level %q", errUsage, *level)
	}
	switch *natsAccess {
	case "read", "full", "public":
		cfg.NATSAuth.Full, cfg.NATSAuth.Public = *natsAccess == "full", *natsAccess == "public"
	default:
		return fmt.Errorf("%w: --nats-access %q: read, public or full", errUsage, *natsAccess)
	}
	// A password is not a flag: flags show in the process list.
	cfg.NATSAuth.Password = os.Getenv("HIKESHI_NATS_PASSWORD")
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(cfg.Logger)
	if cfg.File, err = loadConfig(*cfgPath); err != nil {
		return err
	}
	for _, t := range strings.Split(*targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Targets = append(cfg.Targets, t)
		}
	}
	h, err := hub.Start(ctx, cfg)
	if errors.Is(err, hub.ErrLocked) {
		return fmt.Errorf("%v: is hikeshi already running? Stop it, or use another --data-dir", err)
	}
	if err != nil {
		return err
	}
	bus := "embedded NATS JetStream in " + cfg.DataDir + "/nats"
	if cfg.NATSListen != "" {
		bus += " (clients: nats://" + cfg.NATSListen + natsLogin(cfg.NATSAuth) + ")"
	}
	if cfg.NATSURL != "" {
		bus = "NATS at " + natsjs.Redacted(cfg.NATSURL)
	}
	durability := "acknowledged events survive a process crash; fsync every 2 min (use --sync-always or a 3-node cluster to survive power loss)"
	if cfg.SyncAlways {
		durability = "every event is fsynced before it is acknowledged"
	}
	if h.Addr() != "" {
		fmt.Fprintf(stdout, "hikeshi listening on http://%s (web console: open http://%s/)\n", h.Addr(), h.Addr())
	}
	fmt.Fprintf(stdout, "event store: %s\ntimeline:    %s\ntargets:     %s\ndurability:  %s\n", bus, cfg.DataDir+"/timeline.db", strings.Join(h.Targets(), ","), durability)
	return h.Run(ctx)
}

// natsLogin says how outside clients of --nats-listen log in.
func natsLogin(a natsjs.Auth) string {
	if !a.Configured() {
		return ", no login: loopback only"
	}
	access := "read only"
	if a.Full {
		access = "full access"
	} else if a.Public {
		access = "read only, " + events.PublicStream + " only"
	}
	how := []string{}
	if a.User != "" {
		how = append(how, "user "+a.User)
	}
	if a.NKey != "" {
		how = append(how, "nkey "+a.NKey)
	}
	if a.TLSCert != "" {
		how = append(how, "TLS")
	}
	return ", login: " + strings.Join(how, ", ") + ", " + access
}

// progress draws a one-line progress bar on a terminal-ish writer.
type progress struct {
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) update(done, total uint64) {
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = now
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	const width = 30
	n := int(frac * width)
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-9)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% seq %d/%d  %.0f events/s", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, done, total, rate)
	p.drawn = true
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
