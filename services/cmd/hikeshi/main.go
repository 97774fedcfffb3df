// Command hikeshi is the incident hub and its command-line client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
)

type command struct {
	name    string
	args    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

func commands() []command {
	cmds := []command{
		{"serve", "[flags]", "run the hub: API, timeline projector, embedded NATS and SQLite", serve},
		{"declare", "--title T --service S --severity SEV2 [flags]", "declare an incident", declare},
		{"ls", "[--status open|closed]", "list incidents", ls},
		{"show", showUsage, "show an incident's current state, or as it stood at a past time", show},
		{"diff", diffUsage, "list what changed on an incident between two times: fields and events", diff},
		{"timeline", "ID [--order recorded|occurred]", "print an incident's timeline", timelineCmd},
		{"evidence", evidenceUsage, "add evidence to an incident, hand it over, list it with its chain of custody", evidenceCmd},
		{"milestones", "ID", "list an incident's milestones, recorded or derived", milestonesCmd},
		{"tail", "", "follow new events live", tail},
		{"replica", replicaUsage, "list the hub replicas' timeline consumers on a shared NATS, or retire one (serve --node-name)", replicaCmd},
		{"replay", replayUsage, "run one projector (timeline, slack, jira, …) again over the stream, with the hub stopped", replay},
		{"postmortem", "ID", "open the postmortem pull request now (GitHub module)", postmortem},
		{"followups", "", "list incidents to follow up: open too long, postmortem missing or unmerged", followups},
		{"signals", signalsUsage, "list recent signals: the rule that decided, the route, the incident or ticket it went to", signalsCmd},
		{"token", tokenUsage, "create, list and revoke API tokens (admins)", tokenCmd},
		{"drill", drillUsage, "replay a closed incident, or a scenario file, as a new drill on an accelerated clock", drillCmd},
		{"verify", verifyUsage, "check that the record was not altered: hash chains and signed checkpoints (exit 1 on any break)", verifyCmd},
		{"export", exportUsage, "write an incident's events, chain and checkpoints as a bundle anyone can verify offline", exportCmd},
		{"keys", keysUsage, "print the public key that signs the checkpoints", keysCmd},
		{"rules", rulesUsage, "show what the signal rules make of a sender's payload (--source alertmanager|grafana|aws|gcp-scc|generic)", rulesCmd},
	}
	// The incident commands go right after declare.
	var ics []command
	for _, ic := range incidentCommands {
		ics = append(ics, command{ic.name, ic.usage, ic.summary, ic.run})
	}
	return slices.Insert(cmds, 2, ics...)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "hikeshi: an event-sourced incident hub\n\nUsage: hikeshi COMMAND [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'hikeshi COMMAND --help' for a command's flags. Every flag --foo-bar can also be set as HIKESHI_FOO_BAR.\nIDs are incident ids or case numbers (INC-42).")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "hikeshi %s: %v\nusage: hikeshi %s %s\n", c.name, err, c.name, c.args)
				return 2
			}
			fmt.Fprintf(stderr, "hikeshi %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "hikeshi: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

var errUsage = errors.New("wrong arguments")

// subcommand is one verb of a command with verbs (token, evidence).
type subcommand struct {
	names []string // the verb and its aliases
	run   func(ctx context.Context, args []string, w io.Writer) error
}

// dispatch runs the subcommand args[0] names, or says which there are.
func dispatch(ctx context.Context, args []string, w io.Writer, subs ...subcommand) error {
	var known []string
	for _, sc := range subs {
		if len(args) > 0 && slices.Contains(sc.names, args[0]) {
			return sc.run(ctx, args[1:], w)
		}
		known = append(known, sc.names[0])
	}
	if len(args) == 0 {
		return fmt.Errorf("%w: say %s", errUsage, strings.Join(known, ", "))
	}
	return fmt.Errorf("%w: unknown subcommand %q (%s)", errUsage, args[0], strings.Join(known, ", "))
}

// flags is a FlagSet whose every flag also reads HIKESHI_<NAME>.
type flags struct {
	*flag.FlagSet
}

func newFlags(name, args string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: hikeshi %s %s\n\nflags (each also settable as an environment variable):\n", name, args)
		fs.PrintDefaults()
	}
	return &flags{fs}
}

func envName(flagName string) string {
	return "HIKESHI_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies environment variables for flags not given on the command
// line, then the command line; it returns the positional arguments. Flags
// may come before or after positional arguments.
func (f *flags) parse(args []string) ([]string, error) {
	f.VisitAll(func(fl *flag.Flag) {
		fl.Usage += " [" + envName(fl.Name) + "]"
	})
	var positional []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var errs []string
	f.VisitAll(func(fl *flag.Flag) {
		if v, ok := os.LookupEnv(envName(fl.Name)); ok && !set[fl.Name] {
			if err := fl.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", envName(fl.Name), v, err))
			}
		}
	})
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("%w: %s", errUsage, strings.Join(errs, "; "))
	}
	return positional, nil
}
