#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""s3pg_config.py - a copy of a serve configuration on an S3 bucket and a
PostgreSQL database (tests/e2e/lib.sh under PULLCACHE_TEST_STORAGE=s3pg).

    s3pg_config.py IN OUT ENDPOINT BUCKET REGION CREDENTIALS_FILE CONNINFO_FILE

IN: the test's configuration file, or '' for none. OUT gets IN with
storage.blobs (driver s3, path-style, the credentials file) and storage.meta
(driver postgres, the conninfo file) set; the rest of IN, storage.data and
the test's other storage.blobs keys (redirect, redirect_ttl) included, as it
was. No secret is written to OUT.
"""
import sys

import yaml

if len(sys.argv) != 8:
    sys.exit(__doc__)
src, out, endpoint, bucket, region, creds, conninfo = sys.argv[1:]
doc = {}
if src:
    with open(src) as f:
        doc = yaml.safe_load(f) or {}
storage = doc.get('storage') or {}
# where and how to reach the store is the run's; what the test asks of it
# (redirect, redirect_ttl, ...) stays
blobs = {k: v for k, v in (storage.get('blobs') or {}).items()
         if k not in ('driver', 'endpoint', 'bucket', 'region', 'path_style', 'credentials_file',
                      'prefix')}
blobs.update({'driver': 's3', 'endpoint': endpoint, 'bucket': bucket, 'region': region,
              'path_style': True, 'credentials_file': creds})
storage['blobs'] = blobs
storage['meta'] = {'driver': 'postgres', 'conninfo_file': conninfo}
doc['storage'] = storage
with open(out, 'w') as f:
    yaml.safe_dump(doc, f, default_flow_style=False, sort_keys=False)
