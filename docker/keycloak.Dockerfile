# The official Keycloak image with the apsis-sso extension in providers/, built once
# (kc.sh build) so the container starts with --optimized.
ARG KEYCLOAK_VERSION=26.7.3

FROM maven:3.9.9-eclipse-temurin-21 AS extension
WORKDIR /src
COPY keycloak-extension/pom.xml ./
RUN mvn -q -B dependency:go-offline
COPY keycloak-extension/src ./src
RUN mvn -q -B package -DskipTests

FROM quay.io/keycloak/keycloak:${KEYCLOAK_VERSION} AS builder
ENV KC_DB=postgres KC_HEALTH_ENABLED=true KC_METRICS_ENABLED=true
COPY --from=extension /src/target/apsis-sso-keycloak-extension-*.jar /opt/keycloak/providers/
RUN /opt/keycloak/bin/kc.sh build

FROM quay.io/keycloak/keycloak:${KEYCLOAK_VERSION}
COPY --from=builder /opt/keycloak/ /opt/keycloak/
ENTRYPOINT ["/opt/keycloak/bin/kc.sh"]
