package main

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

func TestConfigExternalTypes(t *testing.T) {
	t.Parallel()
	want := []domain.JobType{"resize_image", "transcode"}

	for name, load := range map[string]func(t *testing.T) (Config, error){
		"env": func(t *testing.T) (Config, error) {
			return loadConfig(t, nil, "TROUPE_EXTERNAL_TYPES=resize_image, transcode,")
		},
		"flag": func(t *testing.T) (Config, error) {
			return loadConfig(t, []string{"--external-types", "resize_image", "--external-types", "transcode"})
		},
		"yaml key": func(t *testing.T) (Config, error) {
			return loadConfig(t, []string{"--config", writeFile(t, "external_types: [resize_image, transcode]\n")})
		},
		"yaml camelCase": func(t *testing.T) (Config, error) {
			return loadConfig(t, []string{"--config", writeFile(t, "externalTypes: [resize_image, transcode]\n")})
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := load(t)
			require.NoError(t, err)
			require.Equal(t, want, cfg.ActorsConfig().ExternalTypes)
		})
	}

	t.Run("both spellings in the file", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "externalTypes: [a]\nexternal_types: [b]\n")
		_, err := loadConfig(t, []string{"--config", path})
		require.ErrorContains(t, err, "both externalTypes and external_types are set")
	})
	t.Run("an error names the file's spelling", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "externalTypes: [send_email]\n")
		_, err := loadConfig(t, []string{"--config", path})
		require.ErrorContains(t, err, `invalid externalTypes (in `+path+`) "send_email": is a demo handler's type`)
	})
	t.Run("a demo handler's type, only while demo is on", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, nil, "TROUPE_EXTERNAL_TYPES=noop")
		require.ErrorContains(t, err, `invalid TROUPE_EXTERNAL_TYPES "noop": is a demo handler's type; rename it, or turn the demo handlers off with TROUPE_DEMO=false`)
		cfg, err := loadConfig(t, []string{"--demo=false"}, "TROUPE_EXTERNAL_TYPES=noop")
		require.NoError(t, err)
		require.Equal(t, []domain.JobType{"noop"}, cfg.ActorsConfig().ExternalTypes)
	})
	t.Run("twice", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, nil, "TROUPE_EXTERNAL_TYPES=a,b,a")
		require.ErrorContains(t, err, `invalid TROUPE_EXTERNAL_TYPES "a": is listed twice`)
	})
	t.Run("too long", func(t *testing.T) {
		t.Parallel()
		long := string(bytes.Repeat([]byte("x"), domain.MaxJobTypeLength+1))
		_, err := loadConfig(t, []string{"--external-types", long})
		require.ErrorContains(t, err, "invalid --external-types")
		require.ErrorContains(t, err, "must be 1 to 128 bytes")
	})
}

func TestConfigMaxResultBytes(t *testing.T) {
	t.Parallel()
	require.Equal(t, actors.MaxResultBytesDefault, DefaultConfig().ActorsConfig().MaxResultBytes)
	require.Equal(t, 65536, DefaultConfig().MaxResultBytes)

	cfg, err := loadConfig(t, nil, "TROUPE_MAX_RESULT_BYTES=1024")
	require.NoError(t, err)
	require.Equal(t, 1024, cfg.ActorsConfig().MaxResultBytes)

	_, err = loadConfig(t, nil, "TROUPE_MAX_RESULT_BYTES=0")
	require.ErrorContains(t, err, `invalid TROUPE_MAX_RESULT_BYTES 0: must be at least 1`)
	_, err = loadConfig(t, nil, "TROUPE_MAX_RESULT_BYTES=lots")
	require.ErrorContains(t, err, `invalid TROUPE_MAX_RESULT_BYTES "lots": want a whole number`)
}

func TestConfigWorkerTokensAreSecret(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, nil, "TROUPE_WORKER_TOKENS=w0rker-1,w0rker-2")
	require.NoError(t, err)
	require.Equal(t, []string{"w0rker-1", "w0rker-2"}, cfg.WorkerTokens)
	require.Equal(t, cfg.WorkerTokens, cfg.HTTPConfig().WorkerTokens)

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", slog.Any("config", cfg))
	require.NotContains(t, buf.String(), "w0rker")
	require.Contains(t, buf.String(), `"worker_tokens":"(set)"`)
}

func TestConfigWebhooks(t *testing.T) {
	t.Parallel()

	t.Run("a full entry, and the defaults", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, `
webhooks:
  - type: resize_image
    url: "https://user:pa55word@imgsvc:9000/jobs"
    timeout: 2m
    headers: {Authorization: "Bearer h3ader-secret", X-Team: imaging}
    secretEnv: IMG_HOOK_SECRET
  - type: transcode
    url: http://video/jobs
    secret: "inl1ne-secret"
  - type: notify
    url: http://notify/jobs
`)
		cfg, err := loadConfig(t, []string{"--config", path}, "IMG_HOOK_SECRET=env-s3cret")
		require.NoError(t, err)
		require.Equal(t, []WebhookSpec{
			{
				Type: "resize_image", URL: "https://user:pa55word@imgsvc:9000/jobs", Timeout: 2 * time.Minute,
				Headers: map[string]string{"Authorization": "Bearer h3ader-secret", "X-Team": "imaging"},
				Secret:  "env-s3cret", SecretEnv: "IMG_HOOK_SECRET",
			},
			{Type: "transcode", URL: "http://video/jobs", Timeout: 30 * time.Second, Secret: "inl1ne-secret"},
			{Type: "notify", URL: "http://notify/jobs", Timeout: 30 * time.Second},
		}, cfg.Webhooks)

		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", slog.Any("config", cfg))
		log := buf.String()
		for _, secret := range []string{"pa55word", "h3ader-secret", "env-s3cret", "inl1ne-secret"} {
			require.NotContains(t, log, secret)
		}
		require.Contains(t, log, `"url":"https://user:xxxxx@imgsvc:9000/jobs"`)
		require.Contains(t, log, `"headers":["Authorization","X-Team"]`)
		require.Contains(t, log, `"secretEnv":"IMG_HOOK_SECRET"`)
		require.Contains(t, log, `"type":"notify"`)
	})

	for name, tc := range map[string]struct {
		yaml    string
		environ []string
		want    string
	}{
		"not a list": {
			yaml: "webhooks: {type: a}\n",
			want: "webhooks: want a list of webhooks",
		},
		"no type": {
			yaml: "webhooks: [{url: http://h/}]\n",
			want: "webhooks[0]: type is required",
		},
		"unknown key": {
			yaml: "webhooks: [{type: a, url: http://h/, retries: 3}]\n",
			want: `webhooks[0] ("a"): unknown key "retries" (the keys are type, url, timeout, headers, secret, secretEnv)`,
		},
		"no url": {
			yaml: "webhooks: [{type: a}]\n",
			want: `webhooks[0] ("a"): url is required`,
		},
		"not http": {
			yaml: "webhooks: [{type: a, url: \"ftp://u:hidden@h/x\"}]\n",
			want: `webhooks[0] ("a"): url "ftp://u:xxxxx@h/x" must be http or https`,
		},
		"no host": {
			yaml: "webhooks: [{type: a, url: \"http:///jobs\"}]\n",
			want: `webhooks[0] ("a"): url "http:///jobs" has no host`,
		},
		"timeout too long": {
			yaml: "webhooks: [{type: a, url: http://h/, timeout: 2h}]\n",
			want: `webhooks[0] ("a"): timeout 2h0m0s must be more than 0 and at most 1h0m0s`,
		},
		"timeout without unit": {
			yaml: "webhooks: [{type: a, url: http://h/, timeout: 30}]\n",
			want: `webhooks[0] ("a"): timeout: want a duration with a unit`,
		},
		"secret and secretEnv": {
			yaml:    "webhooks: [{type: a, url: http://h/, secret: x, secretEnv: S}]\n",
			environ: []string{"S=y"},
			want:    `webhooks[0] ("a"): set secret or secretEnv, not both`,
		},
		"secretEnv unset": {
			yaml: "webhooks: [{type: a, url: http://h/, secretEnv: HOOK_SECRET}]\n",
			want: `webhooks[0] ("a"): secretEnv names the environment variable HOOK_SECRET, which is not set or empty`,
		},
		"secretEnv empty": {
			yaml:    "webhooks: [{type: a, url: http://h/, secretEnv: HOOK_SECRET}]\n",
			environ: []string{"HOOK_SECRET="},
			want:    `which is not set or empty`,
		},
		"empty secret": {
			yaml: "webhooks: [{type: a, url: http://h/, secret: \"\"}]\n",
			want: `webhooks[0] ("a"): secret is empty`,
		},
		"reserved header": {
			yaml: "webhooks: [{type: a, url: http://h/, headers: {troupe-signature: forged}}]\n",
			want: `webhooks[0] ("a"): headers: cannot set Troupe-Signature: the webhook protocol sets it on every call`,
		},
		"bad header name": {
			yaml: "webhooks: [{type: a, url: http://h/, headers: {\"X Bad\": v}}]\n",
			want: `webhooks[0] ("a"): headers: "X Bad" is not a valid header name`,
		},
		"header value with a line break": {
			yaml: "webhooks: [{type: a, url: http://h/, headers: {X-Key: \"line1\\nline2\"}}]\n",
			want: `webhooks[0] ("a"): headers: the value of X-Key has a line break`,
		},
		"the same type twice": {
			yaml: "webhooks: [{type: a, url: http://h/}, {type: a, url: http://i/}]\n",
			want: `webhooks[1] ("a"): type "a" is already handled by webhooks[0]`,
		},
		"an external type": {
			yaml: "external_types: [a]\nwebhooks: [{type: b, url: http://h/}, {type: a, url: http://h/}]\n",
			want: `webhooks[1] ("a"): type "a" is also in external_types (in`,
		},
		"a demo handler": {
			yaml: "webhooks: [{type: send_email, url: http://h/}]\n",
			want: `webhooks[0] ("send_email"): type "send_email" is a demo handler's type; rename it, or turn the demo handlers off with TROUPE_DEMO=false`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(t, []string{"--config", writeFile(t, tc.yaml)}, tc.environ...)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "hidden")
			require.NotContains(t, err.Error(), "forged")
			require.NotContains(t, err.Error(), "line1")
		})
	}

	t.Run("a demo type is fine with demo off", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "demo: false\nwebhooks: [{type: send_email, url: http://h/}]\n")
		cfg, err := loadConfig(t, []string{"--config", path})
		require.NoError(t, err)
		require.Len(t, cfg.Webhooks, 1)
	})
}
