package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/checkpoints"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats.go/jetstream"
)

// The record: verify, export and keys read the incident stream and its
// checkpoints directly, from the data dir (with the hub stopped) or over
// --nats.

const (
	verifyUsage = "[ID | --bundle FILE] [--public-key KEY] [--data-dir DIR | --nats URL]"
	exportUsage = "ID [--data-dir DIR | --nats URL] > bundle.json"
	keysUsage   = "show [--data-dir DIR] [--config FILE]"
)

// recordFlags are the flags the record commands share.
func recordFlags(f *flags, cfg *hub.Config) *string {
	hubFlags(f, cfg)
	f.StringVar(&cfg.CasePrefix, "case-prefix", "INC", "prefix of case numbers (INC-42)")
	return f.String("config", "", "hikeshi.yaml, for its evidence section (default: ./hikeshi.yaml when it exists)")
}

// record is the incident stream and its checkpoints, for reading.
type record struct {
	js     jetstream.JetStream
	events *natsjs.Store
	close  func()
}

// openRecord reads the embedded server's store, holding the data dir's
// lock (which the hub holds while it runs), or connects to --nats, where
// a reader's login (serve --nats-access read) is enough.
func openRecord(ctx context.Context, cfg *hub.Config) (*record, error) {
	cfg.Defaults()
	if cfg.NATSURL != "" {
		nc, err := natsjs.Connect(nil, cfg.NATSURL, "hikeshi-record")
		if err != nil {
			return nil, err
		}
		js, err := jetstream.New(nc)
		if err == nil {
			var st *natsjs.Store
			if st, err = natsjs.NewReader(ctx, js); err == nil {
				return &record{js: js, events: st, close: nc.Close}, nil
			}
		}
		nc.Close()
		return nil, err
	}
	lock, err := hub.LockDataDir(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%v: stop the hub first, or reach its bus with --nats (serve --nats-listen)", err)
	}
	bus, err := hub.OpenBus(ctx, cfg)
	if err != nil {
		lock.Release()
		return nil, err
	}
	return &record{js: bus.JS, events: bus.Events, close: func() { bus.Close(); lock.Release() }}, nil
}

var caseNumber = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*-[0-9]+$`)

// incidentRef resolves an incident id or a case number.
func incidentRef(ctx context.Context, rec *record, prefix, ref string) (string, error) {
	if !caseNumber.MatchString(ref) {
		return ref, nil
	}
	cases, err := natsjs.NewCases(ctx, rec.js, prefix)
	if err != nil {
		return "", fmt.Errorf("%v: give the incident's id instead of its case number", err)
	}
	id, ok, err := cases.Lookup(ctx, ref)
	if err == nil && !ok {
		err = fmt.Errorf("no incident %s", ref)
	}
	return id, err
}

func verifyCmd(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := hub.Config{}
	f := newFlags("verify", verifyUsage)
	cfgPath := recordFlags(f, &cfg)
	bundle := f.String("bundle", "", "verify an exported bundle offline instead of the stream")
	pubKey := f.String("public-key", "", "the signer's public key (ed25519:…, from 'hikeshi keys show'); default: the hub's own key")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || (len(pos) == 1 && *bundle != "") {
		return fmt.Errorf("%w: name at most one incident, or give --bundle", errUsage)
	}
	if cfg.File, err = loadConfig(*cfgPath); err != nil {
		return err
	}
	key, err := publicKey(&cfg, *pubKey)
	if err != nil {
		return err
	}
	var r checkpoints.Report
	switch {
	case *bundle != "":
		r, err = verifyBundleFile(*bundle, key)
	default:
		r, err = verifyBus(ctx, &cfg, pos, key)
	}
	if err != nil {
		return err
	}
	return printReport(stdout, r)
}

func verifyBundleFile(path string, key ed25519.PublicKey) (checkpoints.Report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return checkpoints.Report{}, err
	}
	var b checkpoints.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return checkpoints.Report{}, fmt.Errorf("%s is not a bundle ('hikeshi export' writes them): %v", path, err)
	}
	return checkpoints.VerifyBundle(b, key)
}

func verifyBus(ctx context.Context, cfg *hub.Config, pos []string, key ed25519.PublicKey) (checkpoints.Report, error) {
	rec, err := openRecord(ctx, cfg)
	if err != nil {
		return checkpoints.Report{}, err
	}
	defer rec.close()
	if len(pos) == 1 {
		id, err := incidentRef(ctx, rec, cfg.CasePrefix, pos[0])
		if err != nil {
			return checkpoints.Report{}, err
		}
		return checkpoints.VerifyIncident(ctx, rec.events, rec.js, id, key)
	}
	bar := newProgress(os.Stderr)
	defer bar.done()
	return checkpoints.VerifyStream(ctx, rec.events, rec.js, key, bar.update)
}

// publicKey is the key given, or the public half of the hub's signing key.
func publicKey(cfg *hub.Config, given string) (ed25519.PublicKey, error) {
	if given != "" {
		return checkpoints.ParsePublicKey(given)
	}
	cfg.Defaults()
	src, err := cfg.SigningKey()
	if err != nil {
		return nil, err
	}
	k, err := src.Load(false)
	if err != nil {
		return nil, fmt.Errorf("%w: give the signer's public key with --public-key", err)
	}
	return k.Public().(ed25519.PublicKey), nil
}

// printReport lists every break and a summary; breaks make it an error.
func printReport(w io.Writer, r checkpoints.Report) error {
	for _, b := range r.Breaks {
		fmt.Fprintln(w, "BREAK", b)
	}
	fmt.Fprintf(w, "%d events of %d incidents; %d checkpoints, the last valid one covering stream sequence %d\n",
		r.Events, r.Incidents, r.Checkpoints, r.LastSigned)
	if r.LastSeq > r.LastSigned {
		fmt.Fprintf(w, "the events after stream sequence %d are chained but no checkpoint signs them yet\n", r.LastSigned)
	}
	if r.Unchained > 0 {
		fmt.Fprintf(w, "%d events are unchained (written before chaining): chained by this verification, and sealed by the checkpoints after them\n", r.Unchained)
	}
	if r.OK() {
		fmt.Fprintln(w, "the record is intact")
		return nil
	}
	return fmt.Errorf("%d breaks in the record", len(r.Breaks))
}

func exportCmd(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := hub.Config{}
	f := newFlags("export", exportUsage)
	recordFlags(f, &cfg)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: name one incident", errUsage)
	}
	rec, err := openRecord(ctx, &cfg)
	if err != nil {
		return err
	}
	defer rec.close()
	id, err := incidentRef(ctx, rec, cfg.CasePrefix, pos[0])
	if err != nil {
		return err
	}
	b, err := checkpoints.Export(ctx, rec.events, rec.js, id, time.Now())
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(b)
}

func keysCmd(_ context.Context, args []string, stdout io.Writer) error {
	cfg := hub.Config{}
	f := newFlags("keys", keysUsage)
	f.StringVar(&cfg.DataDir, "data-dir", "./hikeshi-data", "the hub's data dir, where it generated its key")
	cfgPath := f.String("config", "", "hikeshi.yaml, for evidence.signing_key_file (default: ./hikeshi.yaml when it exists)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "show" {
		return fmt.Errorf("%w: the only subcommand is show", errUsage)
	}
	if cfg.File, err = loadConfig(*cfgPath); err != nil {
		return err
	}
	cfg.Defaults()
	src, err := cfg.SigningKey()
	if err != nil {
		return err
	}
	key, err := src.Load(false)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, checkpoints.PublicKeyString(key.Public().(ed25519.PublicKey)))
	return nil
}
