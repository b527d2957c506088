// hiredis 0.14 for Swift. redisCommand is variadic; Fledge uses redisCommandArgv only,
// which takes arrays and needs no wrapper. This header is the one place hiredis is included.
#ifndef FLEDGE_CHIREDIS_SHIM_H
#define FLEDGE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
