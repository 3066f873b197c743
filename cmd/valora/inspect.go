package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"valora/processor/clv"
	"valora/processor/score"
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
	// ValueClasses counts customers by value class ("none" for no class).
	ValueClasses map[string]int `json:"value_classes"`
	// Segments totals value and relationship cost per tier and value
	// class and per treatment, each customer evaluated under the policy
	// at its own last evaluation time.
	Segments *score.SegmentReport `json:"segments,omitempty"`
	// Digest is a SHA-256 over every partition's customers, in partition
	// then key order (partition, id, encoded state): two stores with the
	// same customers in the same states have the same digest.
	Digest string `json:"digest"`
}

type partitionSummary struct {
	Customers int              `json:"customers"`
	Offsets   map[string]int64 `json:"offsets"`
}

func runInspect(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", "Print one customer's state, or a summary of a state directory, as JSON.\n"+
		"Reads the store read-only; do not point it at the directory of a running instance.\n"+
		"With --purge, first rewrites the store so that erased customers leave its files.", stderr)
	dir := fs.String("state-dir", "valora-state", "directory of the Pebble state store")
	customer := fs.String("customer", "", "customer id to print (default: a summary of every partition)")
	policyPath := fs.String("policy", "", "policy YAML file in force, for the segments' treatments, lifetime values and costs (default: the built-in policy)")
	purge := fs.Bool("purge", false, "rewrite the store offline (the instance stopped) so that erased customers' data leaves its files, then print the summary")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	pol, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	if *purge {
		if _, err := os.Stat(*dir); err != nil {
			return usagef("--state-dir %q: %v", *dir, err)
		}
		if err := state.Purge(ctx, state.Options{Dir: *dir}); err != nil {
			return err // names the directory
		}
	}
	st, err := state.Open(state.Options{Dir: *dir, ReadOnly: true})
	if err != nil {
		return err // names the directory
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
	sum, err := summarizeState(st, parts, pol)
	if err != nil {
		return err
	}
	return enc.Encode(sum)
}

// summarizeState reads every customer of parts (sorted) into a summary,
// with segments under pol (none when pol is nil).
func summarizeState(st *state.Store, parts []int32, pol *score.Policy) (inspectSummary, error) {
	var seg *score.Segments
	if pol != nil {
		seg = pol.NewSegments()
	}
	sum := inspectSummary{Partitions: map[int32]partitionSummary{}, Tiers: map[string]int{}, Stages: map[string]int{}, ValueClasses: map[string]int{}}
	h := sha256.New()
	var num [8]byte
	for _, p := range parts {
		offs, err := st.Offsets(p)
		if err != nil {
			return sum, err
		}
		ps := partitionSummary{Offsets: offs}
		err = st.ScanCustomers(p, func(id, value []byte) error {
			binary.BigEndian.PutUint32(num[:4], uint32(p))
			binary.BigEndian.PutUint32(num[4:], uint32(len(id)))
			h.Write(num[:])
			h.Write(id)
			binary.BigEndian.PutUint64(num[:], uint64(len(value)))
			h.Write(num[:])
			h.Write(value)
			var c schemas.Customer
			if err := schemas.DecodeCustomer(value, &c); err != nil {
				return err
			}
			ps.Customers++
			sum.Tiers[c.Tier]++
			sum.Stages[c.LifecycleStage]++
			class := "none"
			if c.ValueClass != nil {
				class = *c.ValueClass
			}
			sum.ValueClasses[class]++
			if c.ChurnRisk {
				sum.ChurnRisk++
			}
			if seg != nil {
				var value *clv.Value
				if o := pol.Evaluate(&c, c.EvaluatedAt); o.Valued {
					value = &o.Value
				}
				seg.Add(&c, value)
			}
			return nil
		})
		if err != nil {
			return sum, fmt.Errorf("scan partition %d: %w", p, err)
		}
		sum.Customers += ps.Customers
		sum.Partitions[p] = ps
	}
	sum.Digest = hex.EncodeToString(h.Sum(nil))
	if seg != nil {
		r := seg.Report()
		sum.Segments = &r
	}
	return sum, nil
}
