// OpenSSL for Swift: the few macros Fledge needs, as real functions.
#ifndef FLEDGE_COPENSSL_SHIM_H
#define FLEDGE_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/err.h>
#include <openssl/bio.h>

static inline long fledge_BIO_get_mem_data(BIO *b, char **pp) {
    return BIO_get_mem_data(b, pp);
}
#endif
