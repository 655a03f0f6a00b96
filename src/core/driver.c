/* driver.c - picks a driver by dialect; only drivers that were built. */
#include "sqorm.h"


const sq_driver *sq_driver_for(int dialect) {
  switch (dialect) {
#ifdef SQ_WITH_SQLITE
  case SQ_DIALECT_SQLITE: return &sq_driver_sqlite;
#endif
#ifdef SQ_WITH_MYSQL
  case SQ_DIALECT_MYSQL: return &sq_driver_mysql;
#endif
#ifdef SQ_WITH_POSTGRES
  case SQ_DIALECT_POSTGRES: return &sq_driver_postgres;
#endif
  default: return NULL;
  }
}
