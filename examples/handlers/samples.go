package handlers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/troupe-go/troupe/domain"
)

// DefaultSampleDelay is the typical simulated work of a sample handler: long
// enough to watch a job run in a demo, short enough not to bore.
const DefaultSampleDelay = 300 * time.Millisecond

// SampleOption adjusts the sample handlers (see WithDelay).
type SampleOption func(*sampleConfig)

type sampleConfig struct {
	delay  time.Duration
	jitter bool
}

// WithDelay sets the simulated work of every sample to exactly d, without
// jitter, so that tests and benchmarks are reproducible; zero makes a sample
// return as soon as its payload validates. A negative d counts as zero.
//
// Without it a sample works DefaultSampleDelay ± 25%, the share picked from
// a hash of the payload: runs look varied, yet one payload always takes the
// same time.
func WithDelay(d time.Duration) SampleOption {
	return func(c *sampleConfig) {
		c.delay = max(d, 0)
		c.jitter = false
	}
}

func newSampleConfig(opts []SampleOption) sampleConfig {
	c := sampleConfig{delay: DefaultSampleDelay, jitter: true}
	for _, opt := range opts {
		opt(&c)
	}
	return c
}

// delayFor returns how long to simulate work for payload.
func (c sampleConfig) delayFor(payload []byte) time.Duration {
	if !c.jitter || c.delay <= 0 {
		return c.delay
	}
	h := fnv.New64a()
	_, _ = h.Write(payload) // a hash.Hash never fails to write
	spread := uint64(c.delay/2) + 1
	return c.delay*3/4 + time.Duration(h.Sum64()%spread)
}

// ---- send_email ------------------------------------------------------------

// MaxEmailSubjectLength bounds a send_email subject, in characters.
const MaxEmailSubjectLength = 200

// SendEmailPayload is the payload of a send_email job.
type SendEmailPayload struct {
	// To is one address as net/mail parses it: "ada@example.com" or
	// "Ada <ada@example.com>". Required.
	To string `json:"to"`
	// Subject is a single line of at most MaxEmailSubjectLength characters. Required.
	Subject string `json:"subject"`
	// Body is the message text; it may be empty.
	Body string `json:"body"`
}

// Validate reports the first broken rule as an error wrapping
// domain.ErrInvalid and naming the field, or nil.
func (p SendEmailPayload) Validate() error {
	if strings.TrimSpace(p.To) == "" {
		return invalidField("to", "is required")
	}
	if _, err := mail.ParseAddress(p.To); err != nil {
		return invalidField("to", "is not a valid email address (%q: %v)", p.To, err)
	}
	if strings.TrimSpace(p.Subject) == "" {
		return invalidField("subject", "is required")
	}
	if n := utf8.RuneCountInString(p.Subject); n > MaxEmailSubjectLength {
		return invalidField("subject", "must be at most %d characters, got %d", MaxEmailSubjectLength, n)
	}
	// A line break in a subject would let a payload inject mail headers.
	if strings.ContainsAny(p.Subject, "\r\n") {
		return invalidField("subject", "must be a single line")
	}
	return nil
}

// SendEmail is the send_email handler. It validates the message and
// simulates handing it to a mail server; it sends nothing.
type SendEmail struct {
	logger *slog.Logger
	cfg    sampleConfig
}

// NewSendEmail returns the send_email handler; a nil logger discards.
func NewSendEmail(logger *slog.Logger, opts ...SampleOption) *SendEmail {
	return &SendEmail{
		logger: orDiscard(logger).With("jobType", string(TypeSendEmail)),
		cfg:    newSampleConfig(opts),
	}
}

// Execute runs one attempt of a send_email job.
func (h *SendEmail) Execute(ctx context.Context, payload []byte) error {
	if err := canceled(ctx, TypeSendEmail); err != nil {
		return err
	}
	var p SendEmailPayload
	if err := decode(payload, &p); err != nil {
		return rejected(TypeSendEmail, err)
	}
	if err := p.Validate(); err != nil {
		return rejected(TypeSendEmail, err)
	}
	d := h.cfg.delayFor(payload)
	h.logger.DebugContext(ctx, "sending email", "to", p.To, "subjectChars", utf8.RuneCountInString(p.Subject), "bodyBytes", len(p.Body), "simulated", d)
	if err := work(ctx, TypeSendEmail, d); err != nil {
		return err
	}
	h.logger.DebugContext(ctx, "email sent", "to", p.To)
	return nil
}

// ---- generate_report -------------------------------------------------------

// The report formats generate_report accepts.
const (
	// ReportFormatPDF is the default format.
	ReportFormatPDF = "pdf"
	// ReportFormatCSV is comma-separated values.
	ReportFormatCSV = "csv"
	// ReportFormatXLSX is an Excel workbook.
	ReportFormatXLSX = "xlsx"
)

// GenerateReportPayload is the payload of a generate_report job.
type GenerateReportPayload struct {
	// ReportType names the report, e.g. "sales". Required.
	ReportType string `json:"reportType"`
	// From is the first day covered, as YYYY-MM-DD. Required.
	From string `json:"from"`
	// To is the last day covered, as YYYY-MM-DD, not before From. Required.
	To string `json:"to"`
	// Format is pdf, csv or xlsx; empty means pdf.
	Format string `json:"format,omitempty"`
}

// Validate reports the first broken rule as an error wrapping
// domain.ErrInvalid and naming the field, or nil.
func (p GenerateReportPayload) Validate() error {
	if strings.TrimSpace(p.ReportType) == "" {
		return invalidField("reportType", "is required")
	}
	from, err := parseDate("from", p.From)
	if err != nil {
		return err
	}
	to, err := parseDate("to", p.To)
	if err != nil {
		return err
	}
	if from.After(to) {
		return invalidField("from", "must not be after \"to\" (%s > %s)", p.From, p.To)
	}
	if p.Format != "" && !slices.Contains([]string{ReportFormatPDF, ReportFormatCSV, ReportFormatXLSX}, p.Format) {
		return invalidField("format", "must be one of pdf, csv, xlsx, got %q", p.Format)
	}
	return nil
}

// FormatOrDefault returns Format, or pdf when it is empty.
func (p GenerateReportPayload) FormatOrDefault() string {
	if p.Format == "" {
		return ReportFormatPDF
	}
	return p.Format
}

func parseDate(field, value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, invalidField(field, "is required")
	}
	t, err := time.Parse(time.DateOnly, value)
	if err != nil {
		return time.Time{}, invalidField(field, "must be a date as YYYY-MM-DD, got %q", value)
	}
	return t, nil
}

// GenerateReport is the generate_report handler. It validates the request
// and simulates rendering the report, one day of the range after another:
// it reports its progress as it goes and ends with a result that
// describes the report. It writes nothing.
type GenerateReport struct {
	logger *slog.Logger
	cfg    sampleConfig
}

// GenerateReportResult is the result of a generate_report job.
type GenerateReportResult struct {
	ReportType string `json:"reportType"`
	Format     string `json:"format"`
	From       string `json:"from"`
	To         string `json:"to"`
	// Days is how many days the report covers.
	Days int `json:"days"`
	// File is where the report would be stored.
	File string `json:"file"`
}

// maxReportSteps bounds how many pieces the simulated work is split into,
// so that a report over years still reports its progress a few times a
// second, not once per day.
const maxReportSteps = 20

// NewGenerateReport returns the generate_report handler; a nil logger discards.
func NewGenerateReport(logger *slog.Logger, opts ...SampleOption) *GenerateReport {
	return &GenerateReport{
		logger: orDiscard(logger).With("jobType", string(TypeGenerateReport)),
		cfg:    newSampleConfig(opts),
	}
}

// Execute runs one attempt of a generate_report job.
func (h *GenerateReport) Execute(ctx context.Context, payload []byte) error {
	if err := canceled(ctx, TypeGenerateReport); err != nil {
		return err
	}
	var p GenerateReportPayload
	if err := decode(payload, &p); err != nil {
		return rejected(TypeGenerateReport, err)
	}
	if err := p.Validate(); err != nil {
		return rejected(TypeGenerateReport, err)
	}
	from, _ := time.Parse(time.DateOnly, p.From) // Validate parsed both
	to, _ := time.Parse(time.DateOnly, p.To)
	days := int(to.Sub(from)/(24*time.Hour)) + 1
	d := h.cfg.delayFor(payload)
	h.logger.DebugContext(ctx, "generating report", "reportType", p.ReportType, "from", p.From, "to", p.To, "format", p.FormatOrDefault(), "simulated", d)
	steps := min(days, maxReportSteps)
	domain.ReportProgress(ctx, 0, fmt.Sprintf("rendering %d days", days))
	for i := 1; i <= steps; i++ {
		if err := work(ctx, TypeGenerateReport, d/time.Duration(steps)); err != nil {
			return err
		}
		done := days * i / steps
		domain.ReportProgress(ctx, float64(100*i)/float64(steps), fmt.Sprintf("rendered %d of %d days", done, days))
	}
	result := GenerateReportResult{
		ReportType: p.ReportType, Format: p.FormatOrDefault(), From: p.From, To: p.To, Days: days,
		File: fmt.Sprintf("reports/%s-%s-%s.%s", p.ReportType, p.From, p.To, p.FormatOrDefault()),
	}
	// Outside a runtime (a test calling Execute) there is nowhere to put
	// it, which is no failure of the report.
	if err := domain.SetResult(ctx, result); err != nil && !errors.Is(err, domain.ErrNoAttempt) {
		return fmt.Errorf("%s: %w", TypeGenerateReport, err)
	}
	h.logger.DebugContext(ctx, "report generated", "reportType", p.ReportType, "format", p.FormatOrDefault())
	return nil
}

// ---- process_file ----------------------------------------------------------

// The operations process_file accepts.
const (
	// FileOperationCompress compresses the file.
	FileOperationCompress = "compress"
	// FileOperationThumbnail renders a thumbnail of the file.
	FileOperationThumbnail = "thumbnail"
	// FileOperationScan scans the file for malware.
	FileOperationScan = "scan"
)

// ProcessFilePayload is the payload of a process_file job.
type ProcessFilePayload struct {
	// Path is relative to the handler's storage root and may not leave it:
	// no leading slash, drive letter or ".." segment. Required.
	Path string `json:"path"`
	// Operation is compress, thumbnail or scan. Required.
	Operation string `json:"operation"`
}

// Validate reports the first broken rule as an error wrapping
// domain.ErrInvalid and naming the field, or nil.
func (p ProcessFilePayload) Validate() error {
	if strings.TrimSpace(p.Path) == "" {
		return invalidField("path", "is required")
	}
	if strings.ContainsRune(p.Path, 0) {
		return invalidField("path", "must not contain a NUL byte")
	}
	// Judge both separators, so a Windows-style path cannot slip through.
	slashed := strings.ReplaceAll(p.Path, `\`, "/")
	if strings.HasPrefix(slashed, "/") || hasDriveLetter(slashed) {
		return invalidField("path", "must be relative, got %q", p.Path)
	}
	if slices.Contains(strings.Split(slashed, "/"), "..") {
		return invalidField("path", "must not contain a \"..\" segment, got %q", p.Path)
	}
	switch p.Operation {
	case FileOperationCompress, FileOperationThumbnail, FileOperationScan:
		return nil
	case "":
		return invalidField("operation", "is required")
	default:
		return invalidField("operation", "must be one of compress, thumbnail, scan, got %q", p.Operation)
	}
}

func hasDriveLetter(p string) bool {
	if len(p) < 2 || p[1] != ':' {
		return false
	}
	c := p[0] | 0x20 // lower case
	return c >= 'a' && c <= 'z'
}

// ProcessFile is the process_file handler. It validates the request and
// simulates the operation; it touches no file.
type ProcessFile struct {
	logger *slog.Logger
	cfg    sampleConfig
}

// NewProcessFile returns the process_file handler; a nil logger discards.
func NewProcessFile(logger *slog.Logger, opts ...SampleOption) *ProcessFile {
	return &ProcessFile{
		logger: orDiscard(logger).With("jobType", string(TypeProcessFile)),
		cfg:    newSampleConfig(opts),
	}
}

// Execute runs one attempt of a process_file job.
func (h *ProcessFile) Execute(ctx context.Context, payload []byte) error {
	if err := canceled(ctx, TypeProcessFile); err != nil {
		return err
	}
	var p ProcessFilePayload
	if err := decode(payload, &p); err != nil {
		return rejected(TypeProcessFile, err)
	}
	if err := p.Validate(); err != nil {
		return rejected(TypeProcessFile, err)
	}
	d := h.cfg.delayFor(payload)
	h.logger.DebugContext(ctx, "processing file", "path", p.Path, "operation", p.Operation, "simulated", d)
	if err := work(ctx, TypeProcessFile, d); err != nil {
		return err
	}
	h.logger.DebugContext(ctx, "file processed", "path", p.Path, "operation", p.Operation)
	return nil
}
