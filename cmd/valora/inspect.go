package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"valora/schemas"
	"valora/state"
)

// inspectSummary is the JSON `valora inspect` prints for a state directory.
type inspectSummary struct {
	Partitions map[int32]partitionSummary `json:"partitions"`
	Customers  int                        `json:"customers"`
	Tiers      map[string]int             `json:"tiers"`
	Stages     map[string]int             `json:"lifecycle_stages"`
	ChurnRisk  int                        `json:"churn_risk"`
}

type partitionSummary struct {
	Customers int              `json:"customers"`
	Offsets   map[string]int64 `json:"offsets"`
}

func runInspect(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", "Print one customer's state, or a summary of a state directory, as JSON.\n"+
		"Reads the store read-only; do not point it at the directory of a running instance.", stderr)
	dir := fs.String("state-dir", "valora-state", "directory of the Pebble state store")
	customer := fs.String("customer", "", "customer id to print (default: a summary of every partition)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	st, err := state.Open(state.Options{Dir: *dir, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open state %q: %w", *dir, err)
	}
	defer st.Close()
	parts, err := st.Partitions()
	if err != nil {
		return err
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if *customer != "" {
		for _, p := range parts {
			val, found, err := st.GetCustomer(p, []byte(*customer), nil)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			var c schemas.Customer
			if err := schemas.DecodeCustomer(val, &c); err != nil {
				return fmt.Errorf("decode customer in partition %d: %w", p, err)
			}
			return enc.Encode(struct {
				Partition int32 `json:"partition"`
				*schemas.Customer
			}{p, &c})
		}
		return fmt.Errorf("customer %q not found in %s", *customer, *dir)
	}
	sum := inspectSummary{Partitions: map[int32]partitionSummary{}, Tiers: map[string]int{}, Stages: map[string]int{}}
	for _, p := range parts {
		offs, err := st.Offsets(p)
		if err != nil {
			return err
		}
		ps := partitionSummary{Offsets: offs}
		err = st.ScanCustomers(p, func(_, value []byte) error {
			var c schemas.Customer
			if err := schemas.DecodeCustomer(value, &c); err != nil {
				return err
			}
			ps.Customers++
			sum.Tiers[c.Tier]++
			sum.Stages[c.LifecycleStage]++
			if c.ChurnRisk {
				sum.ChurnRisk++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("scan partition %d: %w", p, err)
		}
		sum.Customers += ps.Customers
		sum.Partitions[p] = ps
	}
	return enc.Encode(sum)
}
