package state

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// metaInstanceName is the meta key of the instance key.
const metaInstanceName = "instance"

// InstanceKey returns the key that names the instance this store belongs
// to, generating and storing one (synced) on first use. It outlives
// restarts on the same directory, so a restarted instance presents the
// same identity to Kafka (its transactional id) and fences its earlier run.
func (s *Store) InstanceKey() (string, error) {
	key := AppendMetaKey(nil, metaInstanceName)
	var out string
	err := s.call(func() error {
		v, closer, err := s.db.Get(key)
		if err == nil {
			out = string(v)
			return closer.Close()
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("read instance key: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", s.wrap(err)
	}
	if out != "" {
		return out, nil
	}
	if s.readOnly {
		return "", s.wrap(errors.New("instance key: the store has none and is open read-only"))
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("instance key: %w", err)
	}
	out = hex.EncodeToString(b[:])
	if err := s.write("write instance key", func() error { return s.db.Set(key, []byte(out), pebble.Sync) }); err != nil {
		return "", err
	}
	return out, nil
}
