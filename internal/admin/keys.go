package admin

import (
	"fmt"
	"net/http"
)

func (a *API) rotateKeys(r *http.Request) (any, error) {
	if a.cfg.Keys == nil {
		return nil, notFound("signing keys are not managed by this gateway (identity is not configured)")
	}
	if err := decodeBody(r, &struct{}{}, true); err != nil {
		return nil, err
	}
	kid, err := a.cfg.Keys.Rotate(r.Context(), false)
	if err != nil {
		return nil, classify(fmt.Errorf("rotating the signing key: %w", err), "signing key")
	}
	return KeyRotateResponse{KID: kid}, nil
}
