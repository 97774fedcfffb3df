package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/signals"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
)

const rulesUsage = "test [--source S] FILE [PAYLOAD] (the payload on stdin without PAYLOAD)"

// rulesCmd: hikeshi rules test [--source alertmanager] FILE [PAYLOAD]
// reads what a sender sends, as its endpoint reads it, and prints each
// signal and what the rules of FILE make of it.
func rulesCmd(_ context.Context, args []string, stdout io.Writer) error {
	f := newFlags("rules", rulesUsage)
	source := f.String("source", "generic", "the endpoint whose payload this is: "+strings.Join(ingest.Sources(), ", ")+
		" (generic: the normalised signal, as this command prints it)")
	asJSON := f.Bool("json", false, "print the signals and decisions as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || len(pos) > 3 || pos[0] != "test" {
		return fmt.Errorf("%w: want: rules %s", errUsage, rulesUsage)
	}
	cfg, err := config.Load(pos[1], true)
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if len(pos) == 3 {
		file, err := os.Open(pos[2])
		if err != nil {
			return err
		}
		defer file.Close()
		in = file
	}
	payload, err := io.ReadAll(io.LimitReader(in, 1<<20))
	if err != nil {
		return err
	}
	xs, err := signals.Explain(cfg, *source, payload)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(xs)
	}
	for i, x := range xs {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		x.Describe(stdout)
	}
	return nil
}
