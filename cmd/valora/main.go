// Command valora is a Kafka stream processor that scores customers (RFM
// tiers, churn, lifecycle) in real time. Run `valora help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"valora/processor"
	"valora/state"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first SIGTERM or SIGINT starts a graceful stop; stop restores
	// the default action, so that a second one ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env looks up an environment variable; tests pass a map's lookup.
type env func(string) string

// command is one subcommand: it parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error
}

var commands = []command{
	{"dev", "embedded broker, generated traffic and the scorer, with a live summary (no setup)", runDev},
	{"run", "the production daemon against real Kafka brokers", runRun},
	{"gen", "synthetic traffic from a BG/NBD + Gamma-Gamma customer-base model", runGen},
	{"import", "load historical transactions from CSV files (CDNOW or a mapped CSV) into the input topics", runImport},
	{"replay", "rebuild state from the input topics into a new state directory and a shadow topic, then summarize", runReplay},
	{"bench", "end-to-end benchmark: a fixed workload through the real pipeline", runBench},
	{"inspect", "read one customer or a summary of a state directory offline", runInspect},
	{"calibrate", "fit BG/NBD, Gamma-Gamma and RFM boundaries over a customer base; write a new policy", runCalibrate},
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a runtime failure
	exitUsage   = 2 // a bad flag or configuration
	// exitShutdownAbandoned is a stop that abandoned a commit
	// (processor.ErrShutdownAbandoned, or the shutdown timeout's last
	// resort): the state stays at the last durable cycle, and a restart
	// resumes from it.
	exitShutdownAbandoned = 3
	// exitState is a state directory that cannot be used: an I/O error
	// or a full disk under the store, a directory that is missing or holds
	// no store this build can open. A restart alone will not mend it; the
	// message names the directory.
	exitState = 4
)

// run is main without the process: tests call it directly. It returns the
// exit code: 0 success, 1 runtime failure, 2 usage or configuration error,
// 3 a shutdown that abandoned the commit in flight (the state stays at the
// last durable cycle; a restart resumes from it), 4 a state directory that
// cannot be used (a disk fault, say).
func run(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], getenv, stdout, stderr)
		code := exitCode(err)
		if err != nil && err.Error() != "" {
			fmt.Fprintf(stderr, "valora %s: %v\n", c.name, err)
		}
		return code
	}
	fmt.Fprintf(stderr, "valora: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// exitCode is the exit code for a command's error.
func exitCode(err error) int {
	var se *state.Error
	switch {
	case err == nil:
		return exitOK
	case isUsage(err):
		return exitUsage
	case errors.Is(err, processor.ErrShutdownAbandoned):
		return exitShutdownAbandoned
	case errors.As(err, &se):
		return exitState
	default:
		return exitFailure
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "valora scores customers from Kafka in real time: RFM tiers, churn, lifecycle.")
	fmt.Fprintln(w, "\nUsage: valora <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `valora <command> --help` for a command's flags. Every flag can also be")
	fmt.Fprintln(w, "set by an environment variable VALORA_<FLAG>, e.g. VALORA_BROKERS for --brokers.")
}
