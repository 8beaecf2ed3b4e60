#include <iostream>

#include "saltpeter/version.hpp"

int main() {
    std::cout << "spctl " << saltpeter::version() << "\n";
    return 0;
}
