package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// TestServeWiresExternalTypesAndWebhooks checks that serve hands the
// runtime its external types, result limit and webhooks, so that each type
// is listed with what runs it.
func TestServeWiresExternalTypesAndWebhooks(t *testing.T) {
	t.Parallel()
	cfg := memoryConfig()
	cfg.ExternalTypes = []string{"transcode"}
	cfg.MaxResultBytes = 1000
	cfg.Webhooks = []WebhookSpec{{Type: "resize_image", URL: "http://127.0.0.1:1/jobs", Timeout: webhookTimeoutDefault, Secret: "s"}}
	m := startMain(t, cfg)
	require.Equal(t, 1000, m.System().Config().MaxResultBytes)
	runBy := map[domain.JobType]actors.RunBy{}
	for _, info := range m.System().JobTypeInfo() {
		runBy[info.Type] = info.RunBy
	}
	require.Equal(t, actors.RunByExternal, runBy["transcode"])
	require.Equal(t, actors.RunByWebhook, runBy["resize_image"])
	require.Equal(t, actors.RunByGo, runBy["noop"])
}

// TestServeRefusesAWebhookThePackageRefuses checks that a webhook the
// webhook package refuses stops the start with an error naming the entry.
// (LoadConfig refuses it first; this is the net under it.)
func TestServeRefusesAWebhookThePackageRefuses(t *testing.T) {
	t.Parallel()
	cfg := memoryConfig()
	cfg.Webhooks = []WebhookSpec{{Type: "hook", URL: "ftp://h/x", Timeout: webhookTimeoutDefault}}
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	err := m.Run(t.Context())
	require.ErrorContains(t, err, `webhooks[0] ("hook")`)
	require.ErrorContains(t, err, "must be http or https")
	require.NoError(t, m.Close(context.Background()))
}
