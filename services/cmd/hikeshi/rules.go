package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/signals"
)

// rulesCmd: hikeshi rules test FILE < signal.json
func rulesCmd(_ context.Context, args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "test" {
		return fmt.Errorf("%w: want: rules test FILE (the signal on stdin)", errUsage)
	}
	f, err := config.Load(args[1], true)
	if err != nil {
		return err
	}
	in, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	if err != nil {
		return err
	}
	d, err := signals.Explain(f, in)
	if err != nil {
		return err
	}
	d.Describe(stdout)
	return nil
}
