// spd: the saltpeter daemon. The wiring lives in spd_app.cpp.
#include "spd_app.hpp"

int main(int argc, char** argv) { return spd::run(argc, argv); }
