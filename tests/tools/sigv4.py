#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""sigv4.py - an independent AWS Signature Version 4 for S3 with Python's
hmac and hashlib: the expected values of tests/unit/test_s3.c.

    sigv4.py presign URL HOST REGION ACCESS_KEY SECRET_KEY TTL UNIX_TIME
        prints the presigned GET URL (UNSIGNED-PAYLOAD, signed header host).
    sigv4.py header METHOD PATH QUERY HOST REGION ACCESS_KEY SECRET_KEY UNIX_TIME 'name: value'...
        prints the Authorization header line for a request signing host,
        x-amz-date and the given headers; the payload hash is the value of
        x-amz-content-sha256 (UNSIGNED-PAYLOAD without it).
URL, PATH and QUERY are used as they are (already encoded, QUERY sorted).
"""
import datetime
import hashlib
import hmac
import sys
import urllib.parse


def stamps(now):
    t = datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc)
    return t.strftime('%Y%m%d'), t.strftime('%Y%m%dT%H%M%SZ')


def signature(canon, date, stamp, region, sk):
    scope = f'{date}/{region}/s3/aws4_request'
    sts = '\n'.join(['AWS4-HMAC-SHA256', stamp, scope,
                     hashlib.sha256(canon.encode()).hexdigest()])
    k = ('AWS4' + sk).encode()
    for m in (date, region, 's3', 'aws4_request'):
        k = hmac.new(k, m.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


def presign(url, host, region, ak, sk, ttl, now):
    date, stamp = stamps(now)
    path = url.split('://', 1)[1]
    path = path[path.index('/'):]
    q = [('X-Amz-Algorithm', 'AWS4-HMAC-SHA256'),
         ('X-Amz-Credential', f'{ak}/{date}/{region}/s3/aws4_request'),
         ('X-Amz-Date', stamp), ('X-Amz-Expires', str(ttl)), ('X-Amz-SignedHeaders', 'host')]
    qs = '&'.join(urllib.parse.quote(k, safe='-_.~') + '=' + urllib.parse.quote(v, safe='-_.~')
                  for k, v in sorted(q))
    canon = '\n'.join(['GET', path, qs, f'host:{host}', '', 'host', 'UNSIGNED-PAYLOAD'])
    return url + '?' + qs + '&X-Amz-Signature=' + signature(canon, date, stamp, region, sk)


def header(method, path, query, host, region, ak, sk, now, lines):
    date, stamp = stamps(now)
    hdrs = {'host': host, 'x-amz-date': stamp}
    for line in lines:
        name, value = line.split(':', 1)
        hdrs[name.strip().lower()] = value.strip()
    names = sorted(hdrs)
    canon = '\n'.join([method, path, query] + [f'{n}:{hdrs[n]}' for n in names] +
                      ['', ';'.join(names), hdrs.get('x-amz-content-sha256', 'UNSIGNED-PAYLOAD')])
    return (f'Authorization: AWS4-HMAC-SHA256 Credential={ak}/{date}/{region}/s3/aws4_request, '
            f'SignedHeaders={";".join(names)}, '
            f'Signature={signature(canon, date, stamp, region, sk)}')


if sys.argv[1] == 'presign':
    print(presign(*sys.argv[2:7], int(sys.argv[7]), int(sys.argv[8])))
elif sys.argv[1] == 'header':
    print(header(*sys.argv[2:9], int(sys.argv[9]), sys.argv[10:]))
else:
    sys.exit('usage: sigv4.py presign ... | header ...')
