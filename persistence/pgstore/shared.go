package pgstore

import "github.com/troupe-go/troupe/domain"

var _ domain.SharedQueue = (*Store)(nil)
