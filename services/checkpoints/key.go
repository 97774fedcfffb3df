package checkpoints

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// KeyEnv holds the signing key itself (PEM), for deployments that pass
// secrets in the environment.
const KeyEnv = "HIKESHI_EVIDENCE_SIGNING_KEY"

// DefaultKeyFile is where a hub keeps the key it generated, under its data dir.
const DefaultKeyFile = "checkpoint-signing-key.pem"

// KeySource says where the signing key is: the environment first, then
// File, then the data dir's generated key.
type KeySource struct {
	File    string // evidence.signing_key_file
	DataDir string
}

// Load reads the signing key; generate creates the data dir's key when no
// key is configured and none was generated before (the hub does; commands
// that only read do not).
func (s KeySource) Load(generate bool) (ed25519.PrivateKey, error) {
	if pemText, ok := os.LookupEnv(KeyEnv); ok && pemText != "" {
		k, err := parseKey([]byte(pemText))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KeyEnv, err)
		}
		return k, nil
	}
	if s.File != "" {
		return readKey(s.File)
	}
	path := filepath.Join(s.DataDir, DefaultKeyFile)
	k, err := readKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !generate {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no checkpoint signing key: %s does not exist and neither evidence.signing_key_file nor %s is set (the hub generates one at its first start)", path, KeyEnv)
		}
		return k, err
	}
	return generateKey(path)
}

func readKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signing key: %w", err)
	}
	k, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signing key %s: %w", path, err)
	}
	return k, nil
}

// parseKey reads a PKCS #8 PEM ed25519 private key, as
// `openssl genpkey -algorithm ed25519` writes it.
func parseKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("want a PEM \"PRIVATE KEY\" block (openssl genpkey -algorithm ed25519)")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ed25519 key", k)
	}
	return ek, nil
}

func generateKey(path string) (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process was first
		return readKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint signing key: %w", err)
	}
	if err := errors.Join(pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}), f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("checkpoint signing key %s: %w", path, err)
	}
	slog.Warn("generated a checkpoint signing key; keep it safe, and give auditors its public key ('hikeshi keys show')",
		"file", path, "public_key", PublicKeyString(k.Public().(ed25519.PublicKey)))
	return k, nil
}
