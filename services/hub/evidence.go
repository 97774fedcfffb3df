package hub

import (
	"context"

	"github.com/hikeshi/hikeshi/services/checkpoints"
)

// EvidenceSection is the hikeshi.yaml section of the signed checkpoints.
const EvidenceSection = "evidence"

// Evidence is the evidence section with its defaults.
func (c *Config) Evidence() (checkpoints.Config, error) {
	var ec checkpoints.Config
	if _, err := c.File.Section(EvidenceSection, &ec); err != nil {
		return ec, err
	}
	ec.Defaults()
	return ec, nil
}

// SigningKey says where the checkpoint signing key is.
func (c *Config) SigningKey() (checkpoints.KeySource, error) {
	ec, err := c.Evidence()
	return checkpoints.KeySource{File: ec.SigningKeyFile, DataDir: c.DataDir}, err
}

// checkpointWriter is the loop that signs checkpoints of the incident
// stream; it generates a signing key into the data dir when none is
// configured.
func (h *Hub) checkpointWriter() (func(context.Context) error, error) {
	ec, err := h.cfg.Evidence()
	if err != nil {
		return nil, err
	}
	src, _ := h.cfg.SigningKey()
	key, err := src.Load(true)
	if err != nil {
		return nil, err
	}
	w := &checkpoints.Writer{JS: h.bus.JS, Store: h.bus.Events, Key: key, Config: ec, Replicas: h.cfg.Replicas,
		Logger: h.cfg.Logger.With("part", "checkpoints")}
	return w.Run, nil
}
