// Package guide holds the handler that examples/README.md writes step by
// step: charge_card, which charges a customer's card for an order through a
// payment gateway.
//
// It shows the parts of a handler that matter in production: a typed payload
// decoded strictly and validated, a dependency passed in (the Gateway) so
// that tests can replace it, an idempotency key so that a job delivered
// twice charges once, permanent errors for what no retry can fix and plain
// errors for what a retry may, and a context honoured throughout.
package guide

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// TypeChargeCard is the job type that ChargeCard serves.
const TypeChargeCard domain.JobType = "charge_card"

// ChargeCardPayload is the payload of a charge_card job, as a client submits
// it: {"orderId": "A-1001", "customerId": "cus_42", "amountCents": 1999,
// "currency": "EUR"}.
type ChargeCardPayload struct {
	// OrderID names the order being paid. It is the idempotency key: one
	// order is charged at most once, however often its job runs.
	OrderID string `json:"orderId"`
	// CustomerID names the customer whose card on file is charged.
	CustomerID string `json:"customerId"`
	// AmountCents is the amount in the currency's minor unit; it must be
	// positive.
	AmountCents int64 `json:"amountCents"`
	// Currency is an ISO 4217 code in upper case, such as EUR.
	Currency string `json:"currency"`
}

// Validate reports the first broken rule as an error wrapping
// domain.ErrInvalid and naming the JSON field, or nil.
func (p ChargeCardPayload) Validate() error {
	switch {
	case strings.TrimSpace(p.OrderID) == "":
		return invalidField("orderId", "is required")
	case strings.TrimSpace(p.CustomerID) == "":
		return invalidField("customerId", "is required")
	case p.AmountCents <= 0:
		return invalidField("amountCents", "must be positive, got %d", p.AmountCents)
	case !isCurrencyCode(p.Currency):
		return invalidField("currency", "must be an ISO 4217 code such as EUR, got %q", p.Currency)
	}
	return nil
}

func invalidField(field, format string, args ...any) error {
	return fmt.Errorf("%w: field %q %s", domain.ErrInvalid, field, fmt.Sprintf(format, args...))
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// DecodePayload reads a charge_card payload strictly: one JSON object with
// no unknown fields (a misspelt field would otherwise be silently dropped)
// and nothing after it, then validates it. Errors wrap domain.ErrInvalid.
func DecodePayload(payload []byte) (ChargeCardPayload, error) {
	var p ChargeCardPayload
	if len(bytes.TrimSpace(payload)) == 0 {
		return p, fmt.Errorf("%w: payload is empty, want a JSON object", domain.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%w: payload: %w", domain.ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return p, fmt.Errorf("%w: payload has data after its JSON object", domain.ErrInvalid)
	}
	return p, p.Validate()
}

// ErrDeclined is the gateway's answer for a card that cannot be charged:
// declined, expired, or over its limit. Retrying does not help.
var ErrDeclined = errors.New("card declined")

// ChargeRequest is one charge sent to a Gateway.
type ChargeRequest struct {
	// IdempotencyKey makes the charge happen at most once: the gateway
	// answers a repeated key with the first charge's receipt.
	IdempotencyKey string
	// CustomerID, AmountCents and Currency are the payload's.
	CustomerID  string
	AmountCents int64
	Currency    string
}

// Receipt is the gateway's proof of a charge.
type Receipt struct {
	// ID identifies the charge at the gateway.
	ID string
}

// Gateway charges cards. A real one calls a payment provider's API with the
// idempotency key in a header; tests use a fake.
type Gateway interface {
	// Charge charges the card and returns the receipt. It returns an error
	// wrapping ErrDeclined when the card cannot be charged, and any other
	// error (a timeout, a 5xx) when the outcome is unknown and the call may
	// be repeated with the same key. It honours ctx.
	Charge(ctx context.Context, req ChargeRequest) (Receipt, error)
}

// ChargeCard is the handler of charge_card jobs. It keeps no state between
// attempts: everything it needs is in the payload and the gateway.
type ChargeCard struct {
	gateway Gateway
	logger  *slog.Logger
}

// NewChargeCard returns a charge_card handler that charges through gateway
// and logs to logger (nil discards).
func NewChargeCard(gateway Gateway, logger *slog.Logger) *ChargeCard {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ChargeCard{gateway: gateway, logger: logger}
}

// Execute implements domain.Handler: it charges the order's amount once.
//
// A payload that does not decode or validate, and a declined card, fail the
// job at once (domain.Permanent). A gateway error of unknown outcome is
// returned as it is, so the runtime retries it with the same idempotency
// key. A canceled ctx stops the attempt with ctx's error.
func (h *ChargeCard) Execute(ctx context.Context, payload []byte) error {
	p, err := DecodePayload(payload)
	if err != nil {
		return domain.Permanent(fmt.Errorf("%s: %w", TypeChargeCard, err))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: order %s: %w", TypeChargeCard, p.OrderID, err)
	}
	receipt, err := h.gateway.Charge(ctx, ChargeRequest{
		IdempotencyKey: "charge_card:" + p.OrderID,
		CustomerID:     p.CustomerID,
		AmountCents:    p.AmountCents,
		Currency:       p.Currency,
	})
	switch {
	case errors.Is(err, ErrDeclined):
		return domain.Permanent(fmt.Errorf("%s: order %s: %w", TypeChargeCard, p.OrderID, err))
	case err != nil:
		return fmt.Errorf("%s: order %s: %w", TypeChargeCard, p.OrderID, err)
	}
	h.logger.InfoContext(ctx, "card charged",
		slog.String("orderId", p.OrderID),
		slog.String("receipt", receipt.ID),
		slog.Int("attempt", actors.AttemptFromContext(ctx)))
	return nil
}

// ChargeCard is a domain.Handler.
var _ domain.Handler = (*ChargeCard)(nil)
