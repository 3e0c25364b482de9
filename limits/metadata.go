package limits

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Files of a Hasura metadata directory (metadata/ of a Hasura CLI
// project) that hold the sections this package reads.
const (
	MetadataAPILimitsFile     = "api_limits.yaml"
	MetadataIntrospectionFile = "graphql_schema_introspection.yaml"
)

// LoadMetadataDir reads Hasura's own metadata/api_limits.yaml and
// metadata/graphql_schema_introspection.yaml from dir, so a Hasura EE
// project's files can be reused as they are. A file that does not exist
// leaves its section nil; one that exists is decoded strictly.
func LoadMetadataDir(dir string) (*Config, *IntrospectionConfig, error) {
	var (
		c  Config
		ic IntrospectionConfig
	)
	gotC, err := readStrict(filepath.Join(dir, MetadataAPILimitsFile), &c)
	if err != nil {
		return nil, nil, err
	}
	gotIC, err := readStrict(filepath.Join(dir, MetadataIntrospectionFile), &ic)
	if err != nil {
		return nil, nil, err
	}
	var cp *Config
	var icp *IntrospectionConfig
	if gotC {
		cp = &c
	}
	if gotIC {
		icp = &ic
	}
	return cp, icp, nil
}

// readStrict decodes the YAML file at path into v, refusing unknown keys.
// It reports false when the file does not exist.
func readStrict(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("metadata_dir: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return true, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return false, fmt.Errorf("metadata_dir: %s: %w", filepath.Base(path), err)
	}
	return true, nil
}
