package schemas

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// maxNegativeIDs bounds how many unreadable schema ids a stream remembers,
// so that a flood of records with made-up ids cannot grow the cache without
// end. Past it, such ids are looked up again each time.
const maxNegativeIDs = 1024

// idEntry is what a Confluent schema id decodes with: a schema, or the
// *DecodeError to return.
type idEntry struct {
	schema avro.Schema
	err    error
}

// register registers st's current schema under its subject, makes c write
// its id, and remembers that the id decodes with the current schema.
func (c *Codec) register(ctx context.Context, st *stream) error {
	id, err := c.registry.RegisterSchema(ctx, st.subject, sr.Schema{Schema: st.rec.text, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		return fmt.Errorf("register %s schema under subject %q: %w", st.rec.name, st.subject, err)
	}
	if id < 0 || id > math.MaxInt32 {
		return fmt.Errorf("register %s schema under subject %q: registry returned id %d", st.rec.name, st.subject, id)
	}
	st.confluent[0] = confluentMagic
	binary.BigEndian.PutUint32(st.confluent[1:], uint32(id))
	st.header = st.confluent[:]
	st.mu.Lock()
	st.store(uint32(id), idEntry{schema: st.rec.schema})
	st.mu.Unlock()
	return nil
}

// schemaByID returns the schema that decodes st's values written with
// schema id, fetching the writer schema from the registry the first time.
func (c *Codec) schemaByID(st *stream, id uint32) (avro.Schema, error) {
	if e, ok := (*st.ids.Load())[id]; ok {
		return e.schema, e.err
	}
	if c.registry == nil {
		return nil, decodeErr(ReasonUnknownSchema, fmt.Errorf("%s: unknown schema id %d and no schema registry configured", st.rec.name, id))
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := (*st.ids.Load())[id]; ok { // fetched while we waited
		return e.schema, e.err
	}

	ctx, cancel := context.WithTimeout(context.Background(), c.fetchTimeout)
	defer cancel()
	s, err := c.registry.SchemaByID(ctx, int(id))
	if err != nil {
		if re, ok := errors.AsType[*sr.ResponseError](err); ok && re.StatusCode == http.StatusNotFound {
			e := idEntry{err: decodeErr(ReasonUnknownSchema, fmt.Errorf("%s: schema id %d: not in the registry: %w", st.rec.name, id, err))}
			st.store(id, e)
			return nil, e.err
		}
		return nil, fmt.Errorf("%s: fetch schema id %d: %w: %w", st.rec.name, id, ErrRegistryUnavailable, err)
	}

	var e idEntry
	e.schema, e.err = st.rec.readerFor(s)
	if e.err != nil {
		e.err = decodeErr(ReasonUnknownSchema, fmt.Errorf("%s: schema id %d: %w", st.rec.name, id, e.err))
	}
	st.store(id, e)
	return e.schema, e.err
}

// store publishes a copy of st.ids with id added. The caller holds st.mu.
func (st *stream) store(id uint32, e idEntry) {
	old := *st.ids.Load()
	if e.err != nil {
		negatives := 0
		for _, o := range old {
			if o.err != nil {
				negatives++
			}
		}
		if negatives >= maxNegativeIDs {
			return
		}
	}
	m := make(map[uint32]idEntry, len(old)+1)
	maps.Copy(m, old)
	m[id] = e
	st.ids.Store(&m)
}

// readerFor returns the schema that decodes values written with the writer
// schema s into r's current shape, or an error if there is none.
func (r *record) readerFor(s sr.Schema) (avro.Schema, error) {
	if s.Type != sr.TypeAvro {
		return nil, fmt.Errorf("schema type %s, want AVRO", s.Type)
	}
	if len(s.References) > 0 {
		return nil, errors.New("schema references are not supported")
	}
	w, err := parseSchema(s.Schema)
	if err != nil {
		return nil, fmt.Errorf("parse writer schema: %w", err)
	}
	if known, ok := r.writers[canonicalFingerprint(w)]; ok {
		return known, nil
	}
	return resolve(r.schema, w)
}
